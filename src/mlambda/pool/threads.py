"""How many threads an instance's native pools get (ONNX Runtime intra-op, torch, OpenMP, BLAS).

Decided when the instance starts (a session's pool size is fixed when it is built), from three
things: the function's ``cpu`` quota (unset: the machine's cores), the machine's cores, and how
many instances of the function are already live. A lone instance, the one that answers a call
from zero, uses every core it may; each further instance takes a smaller share, so a full pool
does not run many more threads than there are cores. Pure: tested by a table.
"""

from __future__ import annotations

import functools
import math
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlambda.spec import FunctionSpec


@functools.cache
def machine_cores() -> int:
    """The cores this process may run on (its affinity, which a container's cpuset narrows)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# Lambda gives a function one vCPU at 1,769 MB of memory, in proportion below and above, up to 6.
MB_PER_CORE = 1769
MAX_PROPORTIONAL = 6.0


def cpu_cores(cpu: float | str | None, memory_mb: int, cores: int) -> float | None:
    """The cores an instance may use: ``cpu`` as given, or for "proportional" its share of
    memory as Lambda counts it, capped by the machine's cores; None: no cap."""
    if cpu == "proportional":
        return min(memory_mb / MB_PER_CORE, MAX_PROPORTIONAL, float(cores))
    return cpu if not isinstance(cpu, str) else None


def threads_for(spec: FunctionSpec, live: int) -> int:
    """Threads for an instance of ``spec`` that starts beside ``live`` others."""
    cores = machine_cores()
    cpu = cpu_cores(spec.cpu, spec.memory_mb, cores)
    return instance_threads(cpu, cores, live, pinned_threads(spec.env))


def pinned_threads(env: dict[str, str]) -> int | None:
    """The count a function fixed itself with ``OMP_NUM_THREADS`` in its env, if it did."""
    try:
        value = int(env.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value >= 1 else None


def instance_threads(cpu: float | None, cores: int, live: int, pinned: int | None = None) -> int:
    """Threads for the native pools of an instance that starts while ``live`` others of the same
    function run (or start): what the function pinned, if it did; else at most its quota
    (``cpu`` rounded up; unset: every core), at most its share of the cores
    (``cores // (live + 1)``), and never fewer than one."""
    if pinned is not None:
        return pinned
    quota = max(1, math.ceil(cpu)) if cpu else cores
    share = cores // (max(0, live) + 1)
    return max(1, min(quota, cores, share))
