"""A memory cgroup's verdict: killed at its limit only when the kernel's OOM counter says so;
a kill by a signal is not an out-of-memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlambda.backends.limits import CgroupGuard


@pytest.mark.parametrize(
    ("version", "files", "exceeded"),
    [
        (1, {"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"}, True),
        # Reaching the limit (failcnt) while reclaim kept up, then a SIGKILL: not OOM.
        (
            1,
            {"memory.oom_control": "oom_kill_disable 0\noom_kill 0\n", "memory.failcnt": "7"},
            False,
        ),
        # A kernel too old to count OOM kills: reaching the limit is the best evidence.
        (1, {"memory.oom_control": "oom_kill_disable 0\n", "memory.failcnt": "3"}, True),
        (1, {"memory.oom_control": "oom_kill_disable 0\n", "memory.failcnt": "0"}, False),
        (2, {"memory.events": "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n"}, True),
        (2, {"memory.events": "low 0\nhigh 0\nmax 4\noom 0\noom_kill 0\n"}, False),
    ],
)
def test_only_the_kernels_oom_kill_counts_as_out_of_memory(
    tmp_path: Path, version, files, exceeded
):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert CgroupGuard(tmp_path, version).exceeded() is exceeded
