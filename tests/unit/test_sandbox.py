"""The sandbox's pure decisions: what a view binds, what a failed step turns off, what the
platform reports as isolated, and each function's own configuration."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from mlambda.backends.sandbox import (
    Sandboxing,
    SandboxReport,
    missing,
    parse_uid_range,
)
from mlambda.errors import InvalidSpec
from mlambda.registry.registry import next_uid
from mlambda.runtime.protocol import Sandbox
from mlambda.runtime.sandbox import collapse, mounts_under, without
from mlambda.spec import FunctionSpec

FULL = Sandbox(
    uid=100000,
    gid=100000,
    view=True,
    read_only=["/usr"],
    staging="/srv/m/sandbox/root",
    mask=["/srv/m"],
    instance_tmp=True,
    network="none",
)


@pytest.mark.parametrize(
    ("paths", "masks", "kept"),
    [
        (["/usr", "/usr/lib/python3", "/etc"], [], ["/etc", "/usr"]),
        (["/", "/usr"], [], ["/usr"]),
        (["/opt/py/", "/opt/py/lib/site-packages", "/opt/pyenv"], [], ["/opt/py", "/opt/pyenv"]),
        (["relative/path", "/etc"], [], ["/etc"]),
        (["/srv/m/cache/x", "/srv/mx", "/usr"], ["/srv/m"], ["/srv/mx", "/usr"]),
        (["/srv/m"], ["/srv/m/"], []),
    ],
)
def test_collapse_binds_each_tree_once_never_the_root_nor_what_is_masked(paths, masks, kept):
    assert collapse(paths, masks) == kept


MOUNTINFO = """\
22 1 0:21 / / ro,relatime - tmpfs tmpfs ro
23 22 0:22 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw
24 23 254:0 /work/data/cache/x /tmp/work/data/cache/x ro - ext4 /dev/vda rw
25 23 254:0 /work/venv /tmp/work ro - ext4 /dev/vda rw
26 22 254:0 /usr /usr ro - ext4 /dev/vda rw
27 23 254:0 /a\\040b /tmp/a\\040b ro - ext4 /dev/vda rw
28 22 0:23 / /tmpfoo rw - tmpfs tmpfs rw
"""


def test_mounts_under_lists_what_is_inside_tmp_parents_first():
    assert mounts_under("/tmp", MOUNTINFO) == ["/tmp/work", "/tmp/a b", "/tmp/work/data/cache/x"]


@pytest.mark.parametrize(
    ("step", "changes"),
    [
        ("uid", {"uid": -1, "gid": -1}),
        ("network", {"network": "any"}),
        ("instance_tmp", {"instance_tmp": False}),
        ("view", {"view": False, "instance_tmp": False}),
        ("namespaces", {"view": False, "network": "any", "instance_tmp": False}),
        ("python", {"view": False, "instance_tmp": False}),
        ("limits", {"nofile": 0, "fsize_mb": 0, "nproc": 0}),
    ],
)
def test_a_failed_step_turns_off_only_what_it_needs(step, changes):
    assert without(FULL, step) == msgspec.structs.replace(FULL, **changes)


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [("100000-199999", 100000, 199999), ("5000-5000", 5000, 5000), (" 2000 - 3000", 2000, 3000)],
)
def test_a_uid_range_is_first_dash_last(text, first, last):
    uids = parse_uid_range(text)
    assert (uids.start, uids[-1]) == (first, last)


@pytest.mark.parametrize("text", ["100000", "a-b", "0-100", "500-999", "3000-2000", "1-2-3"])
def test_a_bad_uid_range_names_the_setting(text):
    with pytest.raises(ValueError, match="MLAMBDA_SANDBOX_UIDS"):
        parse_uid_range(text)


@pytest.mark.parametrize(
    ("working", "pids", "root", "gone"),
    [
        (FULL, True, True, []),
        (FULL, False, True, ["pids"]),
        (msgspec.structs.replace(FULL, uid=-1, gid=-1), True, True, ["uid"]),
        (
            msgspec.structs.replace(FULL, view=False, instance_tmp=False),
            True,
            True,
            ["view", "instance_tmp"],
        ),
        (msgspec.structs.replace(FULL, network="any"), True, True, ["network"]),
        (msgspec.structs.replace(FULL, uid=-1), True, False, ["uid"]),
    ],
)
def test_missing_names_each_protection_not_in_force(working, pids, root, gone):
    assert missing(FULL, working, pids, root) == gone


def _sandboxing(working: Sandbox, mode: str = "root", pids: bool = True) -> Sandboxing:
    report = SandboxReport(mode, working, missing(FULL, working, pids, mode == "root"), {})
    return Sandboxing(report, range(100000, 200000), Path("/srv/m"), pids, 1024)


def test_each_function_gets_its_own_uid_tmp_size_and_network():
    spec = FunctionSpec(
        name="f", handler="app:h", ephemeral_storage_mb=64, network="none", max_instances=3
    )
    config = _sandboxing(FULL).config_for(spec, 100007, "/srv/m/cache/sha256-x")
    assert config is not None
    assert (config.uid, config.gid) == (100007, 100007)
    assert (config.tmp_mb, config.fsize_mb, config.network) == (64, 64, "none")
    assert config.task_root == "/srv/m/cache/sha256-x"
    assert config.nproc == 0  # a pids cgroup bounds each instance instead


def test_without_a_pids_cgroup_the_functions_uid_bounds_its_processes():
    spec = FunctionSpec(name="f", handler="app:h", max_instances=3)
    config = _sandboxing(FULL, pids=False).config_for(spec, 100007, "/t")
    assert config is not None and config.nproc == 1024 * 5


def test_not_root_keeps_the_platforms_uid_and_says_so():
    working = msgspec.structs.replace(FULL, uid=-1, gid=-1, userns=True)
    sandboxing = _sandboxing(working, mode="user")
    config = sandboxing.config_for(FunctionSpec(name="f", handler="app:h"), 100007, "/t")
    assert config is not None and config.uid == -1
    report = sandboxing.report.to_dict()
    assert report["isolated"] is False and "uid" in report["notIsolated"]
    assert any("not running as root" in line for line in sandboxing.report.warnings())


def test_sandbox_off_configures_nothing_and_warns():
    sandboxing = Sandboxing(
        SandboxReport("off", Sandbox(), [], {}), range(100000, 100010), Path("/m"), True, 1024
    )
    assert sandboxing.config_for(FunctionSpec(name="f", handler="app:h"), 1, "/t") is None
    assert sandboxing.environment() == {}
    assert "OFF" in sandboxing.report.warnings()[0]


def test_a_function_asking_for_no_network_is_refused_where_it_cannot_have_none():
    sandboxing = _sandboxing(msgspec.structs.replace(FULL, network="any"))
    spec = FunctionSpec(name="f", handler="app:h", network="none")
    assert "network namespace" in sandboxing.refusal(spec)
    assert sandboxing.refusal(FunctionSpec(name="f", handler="app:h")) == ""


def test_inside_a_view_home_and_tmpdir_are_the_instances_own_tmp():
    assert _sandboxing(FULL).environment() == {"HOME": "/tmp", "TMPDIR": "/tmp"}
    assert _sandboxing(msgspec.structs.replace(FULL, view=False)).environment() == {}


def test_own_uids_without_a_view_need_a_traversable_data_dir():
    assert not _sandboxing(FULL).needs_traversal
    assert _sandboxing(msgspec.structs.replace(FULL, view=False)).needs_traversal


@pytest.mark.parametrize(
    ("taken", "uids", "chosen"),
    [
        (set(), range(10, 20), 10),
        ({10, 11}, range(10, 20), 12),
        ({10, 15}, range(10, 20), 16),  # after the highest: a removed uid is not reused at once
        ({19}, range(10, 20), 10),  # the end of the range wraps to the lowest free one
        ({10, 11, 19}, range(10, 20), 12),
        ({5, 25}, range(10, 20), 10),  # uids outside the range (it was changed) do not count
    ],
)
def test_next_uid(taken, uids, chosen):
    assert next_uid(taken, uids) == chosen


def test_no_uid_left_is_a_clear_error():
    with pytest.raises(InvalidSpec, match="--sandbox-uids"):
        next_uid({10, 11}, range(10, 12))
