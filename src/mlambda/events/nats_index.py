"""What the NATS queue keeps in memory of its records: which events are queued and when they
are visible, which are leased and until when, which are unfinished, which have an outcome to
deliver. Leasing, ``next_visible`` and ``depth`` read it instead of the KV bucket; it is built
from the bucket on first use and by ``recover``, which assumes one gateway per prefix."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable

from mlambda.events.nats_records import Doc
from mlambda.events.queue import QUEUED, RUNNING


class Timetable:
    """When each of some events is due, per function, earliest first."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        # Per function a heap of (due, id); an entry that ``at`` disagrees with is stale.
        self.heaps: dict[str, list[tuple[float, str]]] = {}

    def set(self, id: str, function: str, at: float | None) -> None:
        before = self.at.pop(id, None)
        if at is not None:
            self.at[id] = at
            if before != at:
                heapq.heappush(self.heaps.setdefault(function, []), (at, id))

    def due(self, function: str, most: int, now: float) -> list[float]:
        """The first ``most`` due times of ``function`` that are not after ``now``."""
        heap, taken = self.heaps.get(function, []), list[tuple[float, str]]()
        while heap and len(taken) < most and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if self.at.get(entry[1]) == entry[0] and entry not in taken:
                taken.append(entry)
        for entry in taken:
            heapq.heappush(heap, entry)
        return [at for at, _ in taken]

    def first(self, function: str) -> float | None:
        heap = self.heaps.get(function, [])
        while heap and self.at.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None


class EventIndex:
    """The unfinished events and the outcomes to deliver, as the records last written say."""

    def __init__(self, docs: list[Doc]) -> None:
        self.queued = Timetable()  # visible at
        self.leases = Timetable()  # running: lease until
        self.live: dict[str, tuple[str, float]] = {}  # unfinished: function, enqueued at
        self.pending: set[str] = set()  # outcomes to deliver
        self.quiet: dict[str, float] = {}  # not fetched until
        for doc in docs:
            self.track(doc)

    def track(self, doc: Doc) -> None:
        id, function, state = doc["id"], doc["function"], doc["state"]
        self.queued.set(id, function, doc["visible_at"] if state == QUEUED else None)
        self.leases.set(id, function, doc["lease_until"] if state == RUNNING else None)
        self.live.pop(id, None)
        if state in (QUEUED, RUNNING):
            self.live[id] = (function, doc["enqueued_at"])
        self.pending.discard(id)
        if doc["delivery"] == "pending":
            self.pending.add(id)

    def plan(self, now: float, room: Callable[[str], int], limit: int) -> Counter[str]:
        """How many to lease of each function: the oldest due (queued and visible, or leased
        past the visibility timeout), at most ``room`` of each and ``limit`` in all."""
        due: list[tuple[float, str]] = []
        for function in self.queued.heaps.keys() | self.leases.heaps.keys():
            if self.quiet.get(function, 0.0) <= now and (most := min(limit, room(function))):
                times = self.queued.due(function, most, now) + self.leases.due(function, most, now)
                due += [(at, function) for at in sorted(times)[:most]]
        return Counter(function for _, function in sorted(due)[:limit])

    def next_visible(self, exclude: set[str]) -> float | None:
        times = [
            max(at, self.quiet.get(function, 0.0))
            for function in list(self.queued.heaps)
            if function not in exclude and (at := self.queued.first(function)) is not None
        ]
        return min(times, default=None)

    def depth(self) -> dict[str, tuple[int, float]]:
        """Per function: how many events are unfinished, and when the oldest was enqueued."""
        found: dict[str, tuple[int, float]] = {}
        for function, enqueued_at in self.live.values():
            count, oldest = found.get(function, (0, enqueued_at))
            found[function] = (count + 1, min(oldest, enqueued_at))
        return found
