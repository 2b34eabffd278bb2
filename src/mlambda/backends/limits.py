"""Per-instance limits: memory (a cgroup where the platform can make one, else a watchdog),
CPU (a CFS quota) and processes (a pids cgroup that also kills whatever an instance left).

``ResourceLimits.attach(pid, limit_mb, name)`` puts one instance (or template) under:
- memory: cgroup v2 ``memory.max`` (OOM kills counted in ``memory.events``), cgroup v1
  ``memory.limit_in_bytes`` (``memory.oom_control``), or else an RSS watchdog: the pool samples
  the instance's RSS while it is busy and kills it past the limit (no polling while idle);
- processes: ``pids.max`` in a pids cgroup. Everything the instance starts — in a session of
  its own or not — stays in that cgroup, and releasing the guard kills it all.
A memory kill then shows in ``Guard.exceeded()``, so the caller gets ``Runtime.OutOfMemory``;
any other kill (a signal) stays a plain exit error.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Protocol

from mlambda.backends import cgroups

PAGE = os.sysconf("SC_PAGE_SIZE")


class Guard(Protocol):
    """One instance's limits."""

    # True when the platform itself must sample RSS (no kernel enforcement).
    polled: bool

    def exceeded(self) -> bool:
        """Whether the memory limit is what killed the instance."""

    def check(self) -> bool:
        """Sample usage now; kill the instance and return True if it is over the limit."""

    def release(self) -> None:
        """The instance is gone: kill what it left behind and drop its cgroups."""


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
            return bool(cgroups.counter(self.directory / "memory.events", "oom_kill"))
        kills = cgroups.counter(self.directory / "memory.oom_control", "oom_kill")
        if kills is not None:
            return kills > 0
        # Kernels before 4.13 count no OOM kills: reaching the limit (failcnt) stands in.
        return cgroups.read_int(self.directory / "memory.failcnt") > 0

    def check(self) -> bool:
        return self.exceeded()

    def release(self) -> None:
        verdict = self.exceeded()
        cgroups.kill_all(self.directory)
        if cgroups.remove(self.directory):
            self._verdict = verdict


class PidsGuard:
    """Processes only (memory limits off, or no memory cgroup): the instance's pids cgroup."""

    polled = False

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def exceeded(self) -> bool:
        return False

    def check(self) -> bool:
        return False

    def release(self) -> None:
        cgroups.kill_all(self.directory)
        cgroups.remove(self.directory)


class Guards:
    """A memory guard and a pids guard as one: what ``ResourceLimits.attach`` returns."""

    def __init__(self, memory: Guard | None, pids: PidsGuard | None) -> None:
        self.memory = memory
        self.pids = pids
        self.polled = memory is not None and memory.polled

    def exceeded(self) -> bool:
        return self.memory is not None and self.memory.exceeded()

    def check(self) -> bool:
        return self.memory is not None and self.memory.check()

    def release(self) -> None:
        # Leftovers first: a cgroup with a process in it cannot be removed.
        if self.pids is not None:
            self.pids.release()
        if self.memory is not None:
            self.memory.release()


class CpuQuota:
    """One instance's CPU limit: a cgroup with a CFS quota of ``cpu`` cores."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def release(self) -> None:
        cgroups.remove(self.directory)


class ResourceLimits:
    """Makes guards. ``mode`` (memory): "auto" (a cgroup where possible), "cgroup", "rss" or
    "off"; ``pids_max`` caps each instance's processes and threads where a pids cgroup can be
    made (0: no pids cgroups)."""

    def __init__(self, mode: str = "auto", name: str | None = None, pids_max: int = 0) -> None:
        self.mode = mode
        self.pids_max = pids_max
        own_name = name or f"mlambda-{os.getpid()}"
        self.version, self.parent = 0, None
        if mode in ("auto", "cgroup"):
            self.version, self.parent = _parent(cgroups.find_memory_cgroup(), own_name, "memory")
            if self.parent is None and mode == "cgroup":
                raise RuntimeError("no writable memory cgroup here (memory_limits = 'cgroup')")
        self.kind = "off" if mode == "off" else f"cgroup v{self.version}" if self.parent else "rss"
        # Used only for functions that set `cpu`.
        self.cpu_version, self.cpu_parent = _parent(cgroups.find_cpu_cgroup(), own_name, "cpu")
        self.pids_version, self.pids_parent = (0, None)
        if pids_max:
            self.pids_version, self.pids_parent = _parent(
                cgroups.find_pids_cgroup(), own_name, "pids"
            )

    @property
    def contains_processes(self) -> bool:
        """Whether every process an instance starts is tracked (and killed with it)."""
        return self.pids_parent is not None

    def limit_cpu(self, pid: int, cpu: float, name: str) -> CpuQuota | None:
        """Cap the instance at ``cpu`` cores where a cpu cgroup can be made (else no cap)."""
        if self.cpu_parent is None:
            return None
        directory = cgroups.make_dir(self.cpu_parent / name, self.cpu_version, "cpu")
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
            cgroups.join(directory, pid)
        except OSError:
            cgroups.remove(directory)
            return None
        return CpuQuota(directory)

    def attach(self, pid: int, limit_mb: int, name: str) -> Guard | None:
        pids = self._pids(pid, name)
        memory = self._memory(pid, limit_mb, name)
        if memory is None and pids is None:
            return None
        return Guards(memory, pids)

    def _memory(self, pid: int, limit_mb: int, name: str) -> Guard | None:
        if self.mode == "off":
            return None
        if self.parent is not None:
            directory = cgroups.make_dir(self.parent / name, self.version, "memory")
            if directory is not None and _limit(directory, pid, limit_mb, self.version):
                return CgroupGuard(directory, self.version)
        return RssGuard(pid, limit_mb)

    def _pids(self, pid: int, name: str) -> PidsGuard | None:
        if self.pids_parent is None:
            return None
        directory = cgroups.make_dir(self.pids_parent / name, self.pids_version, "pids")
        if directory is None:
            return None
        try:
            (directory / "pids.max").write_text(str(self.pids_max))
            cgroups.join(directory, pid)
        except OSError:
            cgroups.remove(directory)
            return None
        return PidsGuard(directory)

    def close(self) -> None:
        for parent in (self.pids_parent, self.parent, self.cpu_parent):
            if parent is not None:
                cgroups.remove_tree(parent)


def _parent(found: tuple[int, Path] | None, name: str, controller: str) -> tuple[int, Path | None]:
    """This platform's own directory under a hierarchy (stale ones of dead platforms go)."""
    if found is None:
        return 0, None
    version, own = found
    cgroups.prune_stale(own)
    directory = cgroups.make_dir(own / name, version, controller)
    return (version, directory) if directory is not None else (0, None)


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
        cgroups.join(directory, pid)
    except OSError:
        cgroups.remove(directory)
        return False
    return True
