"""What the whole platform may run: a deploy asking for more is refused (pure checks), and the
instances of all pools together stay under ``--max-instances-total`` (a shared count)."""

from __future__ import annotations

import os
from collections.abc import Callable

from mlambda.errors import InvalidSpec
from mlambda.spec import FunctionSpec


def machine_memory_mb() -> int:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1024 * 1024))


def check_spec(spec: FunctionSpec, max_instances: int, max_memory_mb: int) -> None:
    """Refuse a function that could never run within the platform's caps, naming the field."""
    if spec.memory_mb > max_memory_mb:
        raise InvalidSpec(
            f"function.memory_mb ({spec.memory_mb} MB) is more than the platform may use "
            f"({max_memory_mb} MB, --max-memory-mb)"
        )
    if spec.min_instances * spec.memory_mb > max_memory_mb:
        raise InvalidSpec(
            f"function.min_instances x memory_mb ({spec.min_instances} x {spec.memory_mb} MB) "
            f"is more than the platform may use ({max_memory_mb} MB, --max-memory-mb)"
        )
    if spec.max_instances > max_instances:
        raise InvalidSpec(
            f"function.max_instances ({spec.max_instances}) is more than the platform runs "
            f"at once ({max_instances}, --max-instances-total)"
        )


class Capacity:
    """Places for instances, shared by every pool. A pool takes places before it starts
    instances and gives each back once its instance is gone; a pool that got fewer than it
    asked for is called back when a place frees."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._waiting: dict[int, Callable[[], None]] = {}

    @property
    def full(self) -> bool:
        return self.used >= self.total

    def take(self, wanted: int, when_free: Callable[[], None]) -> int:
        granted = max(0, min(wanted, self.total - self.used))
        self.used += granted
        if granted < wanted:
            # Keyed by the pool a bound method belongs to: one call back per pool.
            self._waiting[id(getattr(when_free, "__self__", when_free))] = when_free
        return granted

    def give_back(self) -> None:
        self.used = max(0, self.used - 1)
        waiting, self._waiting = list(self._waiting.values()), {}
        for call in waiting:
            call()  # each pool asks again; those still short wait again
