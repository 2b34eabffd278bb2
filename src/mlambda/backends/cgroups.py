"""Control groups: finding a hierarchy the platform may write to, and the directory operations
the limits need (make, join, list, kill everything inside, remove).

cgroup v1 mounts each controller on its own (``/sys/fs/cgroup/memory``...); v2 has one tree
whose ``cgroup.subtree_control`` says which controllers a directory delegates.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Kill passes before giving up on a cgroup whose processes keep forking (each pass kills what
# the previous one could not see; a process with SIGKILL pending can fork no more).
KILL_PASSES = 64


def find_cgroup(controller: str, v1_file: str) -> tuple[int, Path] | None:
    """(version, this process's own cgroup directory) where ``controller`` can be used: the v1
    hierarchy it is mounted in (``v1_file`` proves it), or a v2 one that delegates it."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        names = controllers.split(",")
        if controller in names:
            for mount in dict.fromkeys((",".join(names), controller, f"{controller},cpuacct")):
                own = CGROUP_ROOT / mount / path.lstrip("/")
                if (own / v1_file).exists() and os.access(own, os.W_OK):
                    return 1, own
    for line in lines:
        if line.startswith("0::"):
            for root in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
                own = root / line[3:].lstrip("/")
                subtree = own / "cgroup.subtree_control"
                writable = subtree.exists() and os.access(own, os.W_OK)
                if writable and controller in subtree.read_text().split():
                    return 2, own
    return None


def find_memory_cgroup() -> tuple[int, Path] | None:
    return find_cgroup("memory", "memory.limit_in_bytes")


def find_cpu_cgroup() -> tuple[int, Path] | None:
    return find_cgroup("cpu", "cpu.cfs_quota_us")


def find_pids_cgroup() -> tuple[int, Path] | None:
    # The v1 root of the pids hierarchy has no pids.max, but it is where a child is made.
    return find_cgroup("pids", "cgroup.procs")


def make_dir(directory: Path, version: int, controller: str) -> Path | None:
    try:
        directory.mkdir(exist_ok=True)
        if version == 2:
            (directory / "cgroup.subtree_control").write_text(f"+{controller}")
    except OSError:
        return None
    return directory


def join(directory: Path, pid: int) -> None:
    (directory / "cgroup.procs").write_text(str(pid))


def processes(directory: Path) -> list[int]:
    try:
        return [int(line) for line in (directory / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def kill_all(directory: Path) -> bool:
    """SIGKILL every process in the cgroup, whatever session it made for itself; True once
    none is left to signal (they may still be exiting)."""
    kill = directory / "cgroup.kill"  # v2: the kernel kills the whole group atomically
    if kill.exists():
        with contextlib.suppress(OSError):
            kill.write_text("1")
            return True
    signalled: set[int] = set()
    for _ in range(KILL_PASSES):
        found = set(processes(directory)) - signalled
        if not found:
            return True
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        signalled |= found
    return False


def remove(directory: Path) -> bool:
    with contextlib.suppress(OSError):
        directory.rmdir()
        return True
    return False


def remove_tree(directory: Path) -> None:
    """Remove a cgroup and its children, killing what is left in them first."""
    if not directory.is_dir():
        return
    for child in directory.iterdir():
        if child.is_dir():
            kill_all(child)
            remove(child)
    kill_all(directory)
    remove(directory)


def prune_stale(own: Path) -> None:
    """Remove the cgroups a killed platform left: ``mlambda-<pid>`` of a dead pid."""
    for directory in own.glob("mlambda-*"):
        pid = directory.name.removeprefix("mlambda-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            remove_tree(directory)


def read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def counter(path: Path, key: str) -> int | None:
    """The value of ``key`` in a flat-keyed file (memory.events...), None if it has none."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return None
