"""Scaling decisions: pure functions of a pool's state and the clock."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Snapshot:
    queued: int
    running: int  # instances started and ready (busy or idle)
    starting: int
    concurrency: int
    min_instances: int
    max_instances: int


def instances_to_start(s: Snapshot) -> int:
    """One start per queued request not covered by instances already starting, up to max.

    Also tops up to ``min_instances`` (provisioned concurrency) whether or not requests queue.
    """
    room = s.max_instances - s.running - s.starting
    uncovered = max(0, s.queued - s.starting * s.concurrency)
    for_queue = math.ceil(uncovered / s.concurrency)
    for_minimum = s.min_instances - s.running - s.starting
    return max(0, min(room, max(for_queue, for_minimum)))


def should_stop_idle(
    idle_since: float, now: float, keep_alive_s: float, running: int, min_instances: int
) -> bool:
    """An instance idle for keep_alive_s stops, unless that would go below min_instances."""
    return now - idle_since >= keep_alive_s and running > min_instances
