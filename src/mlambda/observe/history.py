"""What each function's invocations did, in memory and bucketed in time: the numbers behind
alarms and the console's charts, named as CloudWatch names Lambda's metrics.

Each finished invocation is counted in a fine bucket (a second, kept an hour) and a coarse one
(a minute, kept a day) of its function; throttles and dead letters are counted the same way. A
bucket holds counts, the durations' sum, minimum and maximum, and a DDSketch-style log-scale
histogram of the durations, so a percentile is read to within 1% of the exact value. Nothing is
written anywhere: a restart starts the history afresh.

    history = MetricHistory()
    history.record("resize", duration_ms=12.5, error=False, cold=True)
    history.count("resize", "Throttles")
    history.series("resize", "Duration", "p99", 60, time.time() - 3600, time.time())
    # [(1718000040.0, None), ..., (1718003580.0, 12.5)]

Memory: a bucket is about 0.5 KB, plus about 40 bytes per distinct 2%-wide band of durations in
it. A function busy all day holds 3600 fine and 1440 coarse buckets: about 3 MB when its
durations are steady, 5 MB at 20 calls a second spread over 20-200 ms, 30 MB at 1000 a second.

All but ``forget`` run on the event loop thread, and take no lock; ``forget`` may run anywhere.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable

METRICS = ("Invocations", "Errors", "ErrorRate", "Throttles", "Duration", "ColdStarts",
           "Predictions", "DeadLetters")  # fmt: skip
STATISTICS = ("Sum", "Average", "Minimum", "Maximum", "SampleCount")  # and pNN: p50, p99.9
COUNTS = {"Invocations": "invocations", "Errors": "errors", "Throttles": "throttles",
          "ColdStarts": "cold_starts", "Predictions": "predictions",
          "DeadLetters": "dead_letters"}  # fmt: skip
ACCURACY = 0.01
GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
MAX_POINTS = 100_800  # CloudWatch's limit on one GetMetricData answer
_PER_LOG_GAMMA = 1 / math.log(GAMMA)
_PERCENTILE = re.compile(r"p(100|\d{1,2}(?:\.\d+)?)")


class _Bucket:
    """What happened to one function in one slot of time."""

    __slots__ = (*COUNTS.values(), "total", "low", "high", "zeros", "sketch")

    def __init__(self) -> None:
        self.invocations = self.errors = self.cold_starts = self.predictions = 0
        self.throttles = self.dead_letters = 0
        self.total = 0.0  # every invocation has a duration, so ``invocations`` counts them
        self.low, self.high = math.inf, -math.inf
        self.zeros = 0  # durations <= 0, which have no log
        self.sketch: dict[int, int] = {}  # ceil(log_gamma(ms)) -> how many

    def add(self, ms: float, key: int | None, error: bool, cold: bool, rows: int) -> None:
        self.invocations += 1
        self.errors += error
        self.cold_starts += cold
        self.predictions += rows
        self.total += ms
        if ms < self.low:
            self.low = ms
        if ms > self.high:
            self.high = ms
        if key is None:
            self.zeros += 1
        else:
            self.sketch[key] = self.sketch.get(key, 0) + 1

    def merge(self, other: _Bucket, sketch: bool) -> _Bucket:
        for name in (*COUNTS.values(), "zeros", "total"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        if sketch:
            for key, n in other.sketch.items():
                self.sketch[key] = self.sketch.get(key, 0) + n
        return self

    def percentile(self, q: float) -> float:
        rank, seen = q * (self.invocations - 1), self.zeros
        if seen > rank:
            return 0.0
        for key in sorted(self.sketch):
            seen += self.sketch[key]
            if seen > rank:
                return min(max(2 * GAMMA**key / (GAMMA + 1), self.low), self.high)
        return self.high


class _Ring:
    """One function's buckets at one resolution, by slot index (time // width)."""

    __slots__ = ("current", "index", "keep", "slots", "width")

    def __init__(self, width: int, keep_s: int) -> None:
        self.width = width
        self.keep = keep_s // width
        self.slots: dict[int, _Bucket] = {}
        self.index: int | None = None
        self.current = _Bucket()

    def at(self, now: float) -> _Bucket:
        index = int(now // self.width)
        if index == self.index:
            return self.current
        bucket = self.slots.get(index)
        if bucket is None:
            bucket = self.slots[index] = _Bucket()
            # Slots are added in time order, so the oldest come first; one added after the
            # clock stepped back goes once those before it have (reads skip it meanwhile).
            while (oldest := next(iter(self.slots))) <= index - self.keep:
                del self.slots[oldest]
        self.index, self.current = index, bucket
        return bucket

    def first_kept(self, now: float) -> int:
        return int(now // self.width) - self.keep + 1


class MetricHistory:
    """Per function: per second for the last hour, per minute for the last day."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        fine_s: int = 1,
        fine_keep_s: int = 3600,
        coarse_s: int = 60,
        coarse_keep_s: int = 86400,
    ) -> None:
        if not 0 < fine_s <= fine_keep_s or coarse_s % fine_s or not 0 < coarse_s <= coarse_keep_s:
            raise ValueError("need 0 < fine_s <= fine_keep_s, coarse_s a multiple of fine_s")
        self.clock = clock
        self.fine_s, self.fine_keep_s = fine_s, fine_keep_s
        self.coarse_s, self.coarse_keep_s = coarse_s, coarse_keep_s
        self._rings: dict[str, tuple[_Ring, _Ring]] = {}

    def record(
        self, function: str, duration_ms: float, error: bool, cold: bool, rows: int = 1
    ) -> None:
        """One finished invocation, now; ``rows`` is what it predicted (Predictions)."""
        now = self.clock()
        key = math.ceil(math.log(duration_ms) * _PER_LOG_GAMMA) if duration_ms > 0 else None
        fine, coarse = self._rings.get(function) or self._add(function)
        fine.at(now).add(duration_ms, key, error, cold, rows)
        coarse.at(now).add(duration_ms, key, error, cold, rows)

    def count(self, function: str, metric: str, n: int = 1) -> None:
        """``n`` Throttles or DeadLetters now: events that are not a finished invocation."""
        if metric not in ("Throttles", "DeadLetters"):
            raise ValueError(f"count takes Throttles or DeadLetters, not {metric!r}")
        name, now = COUNTS[metric], self.clock()
        for ring in self._rings.get(function) or self._add(function):
            bucket = ring.at(now)
            setattr(bucket, name, getattr(bucket, name) + n)

    def series(
        self, function: str, metric: str, statistic: str, period_s: int, start: float, end: float
    ) -> list[tuple[float, float | None]]:
        """``(t, value)`` for each period ``[t, t + period_s)`` from ``start`` (aligned down to a
        multiple of ``period_s``) while ``t < end``; value None where the period has no data.

        ``function`` "*" is all functions together. A counting metric's every statistic is the
        period's count, 0 if the function did anything else in it; ErrorRate is a percentage.
        Whole minutes reaching back over an hour are read from the minute buckets, other
        periods from the second buckets (so None where over an hour old).
        """
        q = _check(metric, statistic, period_s, self.fine_s)
        now = self.clock()
        t0 = math.floor(start / period_s) * period_s
        n = max(0, math.ceil((end - t0) / period_s))
        if n > MAX_POINTS:
            raise ValueError(f"{n} periods of {period_s}s asked; at most {MAX_POINTS} at once")
        fine_from = (int(now // self.fine_s) - self.fine_keep_s // self.fine_s + 1) * self.fine_s
        which = int(period_s % self.coarse_s == 0 and t0 < fine_from)
        rings = tuple(self._rings.values()) if function == "*" else (self._rings.get(function),)
        found = _gather((r[which] for r in rings if r), now, t0, period_s, n, q is not None)
        return [(float(t0 + i * period_s), _value(b, metric, statistic, q)) for i, b in found]

    def total(
        self, function: str, metric: str, statistic: str, start: float, end: float
    ) -> float | None:
        """One value over ``[start, end)`` in whole minutes (the minute buckets): what a
        summary of the last hour or day shows."""
        q = _check(metric, statistic, self.coarse_s, self.fine_s)
        t0 = math.floor(start / self.coarse_s) * self.coarse_s
        width = max(1, math.ceil((end - t0) / self.coarse_s)) * self.coarse_s
        rings = tuple(self._rings.values()) if function == "*" else (self._rings.get(function),)
        [(_, bucket)] = _gather(
            (r[1] for r in rings if r), self.clock(), t0, width, 1, q is not None
        )
        return _value(bucket, metric, statistic, q)

    def functions(self) -> list[str]:
        """The functions with anything recorded (perhaps since aged out), by name."""
        return sorted(self._rings)

    def forget(self, function: str) -> None:
        """Drop a function's history (it was deleted)."""
        self._rings.pop(function, None)

    def _add(self, function: str) -> tuple[_Ring, _Ring]:
        rings = (_Ring(self.fine_s, self.fine_keep_s), _Ring(self.coarse_s, self.coarse_keep_s))
        self._rings[function] = rings
        return rings


def _check(metric: str, statistic: str, period_s: int, fine_s: int) -> float | None:
    """The percentile asked for as a fraction, None for the other statistics."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    if period_s <= 0 or period_s % fine_s:
        raise ValueError(f"period {period_s}s is not a positive multiple of {fine_s}s")
    if statistic in STATISTICS:
        return None
    match = _PERCENTILE.fullmatch(statistic)
    if match is None:
        raise ValueError(f"unknown statistic {statistic!r}; one of {', '.join(STATISTICS)}, pNN")
    return float(match[1]) / 100


def _gather(
    rings: Iterable[_Ring], now: float, t0: int, period_s: int, n: int, sketch: bool
) -> Iterable[tuple[int, _Bucket | None]]:
    """Each period's buckets from every ring, merged."""
    found: list[_Bucket | None] = [None] * n
    made: set[int] = set()  # periods whose bucket is a merge made here, not a ring's own
    for ring in rings:
        first = ring.first_kept(now)
        for index, bucket in ring.slots.items():
            i = (index * ring.width - t0) // period_s
            if index < first or not 0 <= i < n:
                continue
            got = found[i]
            if got is None:
                found[i] = bucket
                continue
            if i not in made:
                made.add(i)
                found[i] = got = _Bucket().merge(got, sketch)
            got.merge(bucket, sketch)
    return enumerate(found)


def _value(bucket: _Bucket | None, metric: str, statistic: str, q: float | None) -> float | None:
    if bucket is None:
        return None
    if metric in COUNTS:
        return float(getattr(bucket, COUNTS[metric]))
    if bucket.invocations == 0:
        return None
    if metric == "ErrorRate":
        return 100 * bucket.errors / bucket.invocations
    if q is not None:
        return bucket.percentile(q)
    return {
        "Sum": bucket.total,
        "Average": bucket.total / bucket.invocations,
        "Minimum": bucket.low,
        "Maximum": bucket.high,
        "SampleCount": float(bucket.invocations),
    }[statistic]
