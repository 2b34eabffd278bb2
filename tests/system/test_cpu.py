"""`cpu` per function: a CPU quota where a cpu cgroup can be made (pools: test_threads.py)."""

from __future__ import annotations

import json

import pytest

from mlambda.backends.cgroups import find_cpu_cgroup

SPIN = """
    import os, time

    def handler(event, context):
        started, cpu_started = time.monotonic(), time.process_time()
        while time.monotonic() - started < event.get("seconds", 0):
            pass
        return {
            "cpu_s": time.process_time() - cpu_started,
            "omp": os.environ.get("OMP_NUM_THREADS"),
        }
"""


@pytest.mark.skipif(find_cpu_cgroup() is None, reason="no writable cpu cgroup on this machine")
def test_a_cpu_quota_caps_what_an_instance_burns(server, make_function):
    server.deploy(make_function("capped", SPIN, cpu=0.2))
    server.deploy(make_function("free", SPIN))
    capped = json.loads(server.client.invoke("capped", b'{"seconds": 1.0}'))
    free = json.loads(server.client.invoke("free", b'{"seconds": 1.0}'))
    assert capped["cpu_s"] < 0.45  # about 0.2 s of CPU in 1 s of wall time
    # Uncapped, the same loop burns clearly more, however busy the machine's other cores are.
    assert free["cpu_s"] > capped["cpu_s"] + 0.2


@pytest.mark.skipif(find_cpu_cgroup() is None, reason="no writable cpu cgroup on this machine")
def test_proportional_cpu_gives_a_small_function_a_small_share_and_a_large_one_more(
    server, make_function
):
    server.deploy(make_function("small", SPIN, cpu="proportional", memory_mb=256))
    server.deploy(make_function("large", SPIN, cpu="proportional", memory_mb=3538))
    small = json.loads(server.client.invoke("small", b'{"seconds": 1.0}'))
    large = json.loads(server.client.invoke("large", b'{"seconds": 1.0}'))
    assert small["cpu_s"] < 0.35  # 256 / 1769 = 0.14 of a core
    assert large["cpu_s"] > small["cpu_s"] + 0.3  # two cores' quota: the loop runs free
