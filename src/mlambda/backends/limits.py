"""Per-instance memory limits: a memory cgroup where the platform can make one, else a watchdog.

``ResourceLimits.attach(pid, limit_mb)`` puts one instance under its function's ``memory_mb``:
- cgroup v2 (a delegated subtree with the memory controller): ``memory.max``; OOM kills are
  counted in ``memory.events``;
- cgroup v1 (the memory controller mounted on its own): ``memory.limit_in_bytes``; OOM kills
  show in ``memory.oom_control`` / ``memory.failcnt``;
- otherwise an RSS watchdog: the pool samples the instance's RSS while it is busy and kills it
  past the limit (no polling while idle).
Either way the kernel or the watchdog kills the instance, and ``Guard.exceeded()`` then says it
was the limit, so the caller gets ``Runtime.OutOfMemory`` instead of a bare exit error.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Protocol

CGROUP_ROOT = Path("/sys/fs/cgroup")
PAGE = os.sysconf("SC_PAGE_SIZE")


class Guard(Protocol):
    """One instance's limit."""

    # True when the platform itself must sample RSS (no kernel enforcement).
    polled: bool

    def exceeded(self) -> bool: ...

    def check(self) -> bool:
        """Sample usage now; kill the instance and return True if it is over the limit."""

    def release(self) -> None: ...


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


class RssGuard:
    polled = True

    def __init__(self, pid: int, limit_mb: int) -> None:
        self.pid = pid
        self.limit = limit_mb * 1024 * 1024
        self._exceeded = False

    def exceeded(self) -> bool:
        return self._exceeded

    def check(self) -> bool:
        if not self._exceeded and rss_bytes(self.pid) > self.limit:
            self._exceeded = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        return self._exceeded

    def release(self) -> None:
        pass


class CgroupGuard:
    polled = False

    def __init__(self, directory: Path, version: int) -> None:
        self.directory = directory
        self.version = version
        # Read once when the cgroup is removed: the verdict must outlive its directory.
        self._verdict: bool | None = None

    def exceeded(self) -> bool:
        if self._verdict is not None:
            return self._verdict
        if self.version == 2:
            return _counter(self.directory / "memory.events", "oom_kill") > 0
        # Older kernels have no oom_kill counter: hitting the limit (failcnt) and dying is it.
        kills = _counter(self.directory / "memory.oom_control", "oom_kill")
        return kills > 0 or _read_int(self.directory / "memory.failcnt") > 0

    def check(self) -> bool:
        return self.exceeded()

    def release(self) -> None:
        # Empty once the instance has exited; a cgroup with a process left is kept.
        verdict = self.exceeded()
        with contextlib.suppress(OSError):
            self.directory.rmdir()
            self._verdict = verdict


class CpuQuota:
    """One instance's CPU limit: a cgroup with a CFS quota of ``cpu`` cores."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.directory.rmdir()


class ResourceLimits:
    """Makes guards. ``mode``: "auto" (a cgroup where possible), "cgroup", "rss" or "off"."""

    def __init__(self, mode: str = "auto", name: str | None = None) -> None:
        self.mode = mode
        self.version = 0
        self.parent: Path | None = None
        if mode in ("auto", "cgroup"):
            found = find_memory_cgroup()
            if found is not None:
                version, own = found
                _prune_stale(own)
                self.parent = _make_dir(own / (name or f"mlambda-{os.getpid()}"), version)
                self.version = version if self.parent is not None else 0
            if self.parent is None and mode == "cgroup":
                raise RuntimeError("no writable memory cgroup here (memory_limits = 'cgroup')")
        self.kind = "off" if mode == "off" else f"cgroup v{self.version}" if self.parent else "rss"
        self.cpu_version, self.cpu_parent = 0, None
        found_cpu = find_cpu_cgroup()  # used only for functions that set `cpu`
        if found_cpu is not None:
            self.cpu_version, own_cpu = found_cpu
            _prune_stale(own_cpu)
            directory = own_cpu / (name or f"mlambda-{os.getpid()}")
            self.cpu_parent = _make_dir(directory, self.cpu_version, "cpu")

    def limit_cpu(self, pid: int, cpu: float, name: str) -> CpuQuota | None:
        """Cap the instance at ``cpu`` cores where a cpu cgroup can be made (else no cap)."""
        if self.cpu_parent is None:
            return None
        directory = _make_dir(self.cpu_parent / name, self.cpu_version, "cpu")
        if directory is None:
            return None
        period = 100_000
        quota = max(1000, int(cpu * period))
        try:
            if self.cpu_version == 2:
                (directory / "cpu.max").write_text(f"{quota} {period}")
            else:
                (directory / "cpu.cfs_period_us").write_text(str(period))
                (directory / "cpu.cfs_quota_us").write_text(str(quota))
            (directory / "cgroup.procs").write_text(str(pid))
        except OSError:
            with contextlib.suppress(OSError):
                directory.rmdir()
            return None
        return CpuQuota(directory)

    def attach(self, pid: int, limit_mb: int, name: str) -> Guard | None:
        if self.mode == "off":
            return None
        if self.parent is not None:
            directory = _make_dir(self.parent / name, self.version)
            if directory is not None and _limit(directory, pid, limit_mb, self.version):
                return CgroupGuard(directory, self.version)
        return RssGuard(pid, limit_mb)

    def close(self) -> None:
        for parent in (self.parent, self.cpu_parent):
            if parent is not None:
                _remove_tree(parent)


def _prune_stale(own: Path) -> None:
    """Remove the (empty) cgroups a killed platform left: ``mlambda-<pid>`` of a dead pid."""
    for directory in own.glob("mlambda-*"):
        pid = directory.name.removeprefix("mlambda-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _remove_tree(directory)


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


def _remove_tree(directory: Path) -> None:
    """Remove a cgroup and its (empty) children; one still holding a process stays."""
    if not directory.is_dir():
        return
    for child in directory.iterdir():
        if child.is_dir():
            with contextlib.suppress(OSError):
                child.rmdir()
    with contextlib.suppress(OSError):
        directory.rmdir()


def _make_dir(directory: Path, version: int, controller: str = "memory") -> Path | None:
    try:
        directory.mkdir(exist_ok=True)
        if version == 2:
            (directory / "cgroup.subtree_control").write_text(f"+{controller}")
    except OSError:
        return None
    return directory


def _limit(directory: Path, pid: int, limit_mb: int, version: int) -> bool:
    limit = str(limit_mb * 1024 * 1024)
    try:
        if version == 2:
            (directory / "memory.max").write_text(limit)
            swap = directory / "memory.swap.max"
            if swap.exists():  # swapping past the limit would only make the instance crawl
                swap.write_text("0")
        else:
            (directory / "memory.limit_in_bytes").write_text(limit)
        (directory / "cgroup.procs").write_text(str(pid))
    except OSError:
        with contextlib.suppress(OSError):
            directory.rmdir()
        return False
    return True


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _counter(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0
