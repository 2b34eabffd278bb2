"""The in-memory metric history on a fake clock: percentiles against exact ones, periods and
their alignment, "*", which buckets a series reads, the keep windows, and the refusals."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from mlambda.observe.history import METRICS, MetricHistory

T = 1_080_000.0  # a whole hour, so periods of minutes and hours start on it


class FakeClock:
    def __init__(self, now: float = T) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def history(**kwargs: int) -> tuple[MetricHistory, FakeClock]:
    clock = FakeClock()
    return MetricHistory(clock=clock, **kwargs), clock


def values(series: list[tuple[float, float | None]]) -> list[float | None]:
    return [value for _, value in series]


def one(h: MetricHistory, metric: str, statistic: str, function: str = "f") -> float | None:
    """The value over the last minute, from the fine buckets."""
    [(_, value)] = h.series(function, metric, statistic, 60, T, T + 60)
    return value


DISTRIBUTIONS: dict[str, Callable[[random.Random], float]] = {
    "uniform-1-1000ms": lambda r: r.uniform(1, 1000),
    "lognormal": lambda r: r.lognormvariate(3, 1.5),
    "exponential": lambda r: r.expovariate(1 / 50),
    "bimodal-fast-and-slow": lambda r: r.gauss(5, 0.5) if r.random() < 0.9 else r.gauss(900, 50),
    "narrow": lambda r: r.uniform(100, 101),
    "sub-millisecond": lambda r: r.uniform(0.01, 0.5),
}


@pytest.mark.parametrize("statistic", ["p0", "p10", "p50", "p90", "p99", "p99.9", "p100"])
@pytest.mark.parametrize("draw", DISTRIBUTIONS.values(), ids=DISTRIBUTIONS.keys())
def test_percentiles_are_within_one_percent_of_the_exact_nearest_rank(draw, statistic):
    h, clock = history()
    rng = random.Random(7)
    durations = sorted(draw(rng) for _ in range(5000))
    for i, ms in enumerate(durations[::-1]):  # spread over the minute, in no sorted order
        clock.now = T + i * 59 / 5000
        h.record("f", ms, error=False, cold=False)
    q = float(statistic[1:]) / 100
    exact = durations[math.floor(q * (len(durations) - 1))]
    assert one(h, "Duration", statistic) == pytest.approx(exact, rel=0.01)


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [
        ("Sum", 60.0),
        ("Average", 15.0),
        ("Minimum", 0.0),
        ("Maximum", 40.0),
        ("SampleCount", 4.0),
        ("p0", 0.0),
        ("p25", 0.0),  # the zero bucket: rank 0.75 of 4
        ("p50", 5.0),
        ("p100", 40.0),
    ],
)
def test_duration_statistics(statistic, expected):
    h, clock = history()
    for ms in (0.0, 5.0, 15.0, 40.0):
        clock.now += 1
        h.record("f", ms, error=False, cold=False)
    assert one(h, "Duration", statistic) == pytest.approx(expected, rel=0.01)


def test_periods_are_aligned_down_and_empty_ones_are_none():
    h, clock = history()
    for at in (T + 0.5, T + 3.2, T + 3.9):
        clock.now = at
        h.record("f", 10, error=False, cold=False)
    got = h.series("f", "Invocations", "Sum", 2, T - 1.5, T + 6)
    assert got == [(T - 2, None), (T, 1.0), (T + 2, 2.0), (T + 4, None)]
    assert h.series("f", "Invocations", "Sum", 2, T + 1, T + 2) == [(T, 1.0)]
    assert h.series("f", "Invocations", "Sum", 2, T, T) == []
    assert h.series("g", "Invocations", "Sum", 2, T, T + 4) == [(T, None), (T + 2, None)]


def test_a_period_spans_several_buckets():
    h, clock = history()
    for second in range(10):
        clock.now = T + second
        h.record("f", second + 1, error=second % 3 == 0, cold=False)
    assert values(h.series("f", "Invocations", "Sum", 5, T, T + 10)) == [5.0, 5.0]
    assert values(h.series("f", "Errors", "Sum", 5, T, T + 10)) == [2.0, 2.0]
    assert values(h.series("f", "Duration", "Maximum", 5, T, T + 10)) == [5.0, 10.0]
    assert values(h.series("f", "Duration", "p50", 5, T, T + 10)) == pytest.approx(
        [3.0, 8.0], rel=0.01
    )


# What one period gives when the function had only this in it.
ACTIVITY = {
    "nothing": [],
    "invocation": [("record", 10.0, False, False, 1)],
    "failed-cold": [("record", 10.0, True, True, 1)],
    "batch-of-rows": [("record", 10.0, False, False, 32), ("record", 20.0, True, False, 8)],
    "throttle-only": [("count", "Throttles", 3)],
    "dead-letter-only": [("count", "DeadLetters", 1)],
}
EXPECTED: dict[str, dict[str, float | None]] = {
    "nothing": dict.fromkeys(METRICS),
    "invocation": {"Invocations": 1, "Errors": 0, "ErrorRate": 0, "Throttles": 0,
                   "Duration": 10, "ColdStarts": 0, "Predictions": 1, "DeadLetters": 0},
    "failed-cold": {"Invocations": 1, "Errors": 1, "ErrorRate": 100, "Throttles": 0,
                    "Duration": 10, "ColdStarts": 1, "Predictions": 1, "DeadLetters": 0},
    "batch-of-rows": {"Invocations": 2, "Errors": 1, "ErrorRate": 50, "Throttles": 0,
                      "Duration": 30, "ColdStarts": 0, "Predictions": 40, "DeadLetters": 0},
    "throttle-only": {"Invocations": 0, "Errors": 0, "ErrorRate": None, "Throttles": 3,
                      "Duration": None, "ColdStarts": 0, "Predictions": 0, "DeadLetters": 0},
    "dead-letter-only": {"Invocations": 0, "Errors": 0, "ErrorRate": None, "Throttles": 0,
                         "Duration": None, "ColdStarts": 0, "Predictions": 0, "DeadLetters": 1},
}  # fmt: skip


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("activity", ACTIVITY)
def test_counts_are_zero_in_an_active_period_and_none_in_an_idle_one(activity, metric):
    h, _ = history()
    for call, *args in ACTIVITY[activity]:
        if call == "record":
            h.record("f", *args)
        else:
            h.count("f", *args)
    assert one(h, metric, "Sum") == EXPECTED[activity][metric]


@pytest.mark.parametrize("statistic", ["Average", "Minimum", "Maximum", "SampleCount", "p50"])
def test_a_counting_metric_gives_its_count_for_every_statistic(statistic):
    h, _ = history()
    for _ in range(3):
        h.record("f", 10, error=True, cold=False)
    assert one(h, "Errors", statistic) == 3.0
    assert one(h, "ErrorRate", statistic) == 100.0


def test_star_merges_every_function():
    h, clock = history()
    for function, ms in [("a", 10), ("a", 20), ("b", 30), ("c", 1000)]:
        clock.now += 1
        h.record(function, ms, error=function == "c", cold=False)
    h.count("d", "Throttles", 2)
    assert h.functions() == ["a", "b", "c", "d"]
    assert one(h, "Invocations", "Sum", "*") == 4.0
    assert one(h, "Throttles", "Sum", "*") == 2.0
    assert one(h, "ErrorRate", "Average", "*") == 25.0
    assert one(h, "Duration", "Sum", "*") == 1060.0
    assert one(h, "Duration", "Minimum", "*") == 10.0
    assert one(h, "Duration", "p50", "*") == pytest.approx(20.0, rel=0.01)
    assert one(h, "Duration", "p100", "*") == 1000.0
    assert one(h, "Duration", "p50", "a") == pytest.approx(10.0, rel=0.01)  # a's own untouched


def test_star_with_no_functions_is_all_none():
    h, _ = history()
    assert values(h.series("*", "Invocations", "Sum", 60, T, T + 120)) == [None, None]


def test_whole_minutes_older_than_an_hour_come_from_the_minute_buckets():
    h, clock = history()
    h.record("f", 10, error=False, cold=False)
    clock.now = T + 7200
    assert values(h.series("f", "Invocations", "Sum", 60, T, T + 120)) == [1.0, None]
    assert values(h.series("f", "Invocations", "Sum", 3600, T, T + 3600)) == [1.0]
    # Not whole minutes: the second buckets, which no longer hold it.
    assert values(h.series("f", "Invocations", "Sum", 30, T, T + 60)) == [None, None]


def test_a_range_within_the_fine_window_reads_the_fine_buckets():
    # A coarse window shorter than the fine one shows which buckets were read.
    h, clock = history(fine_keep_s=3600, coarse_keep_s=600)
    h.record("f", 10, error=False, cold=False)
    clock.now = T + 1200
    assert values(h.series("f", "Invocations", "Sum", 60, T, T + 60)) == [1.0]
    assert values(h.series("f", "Invocations", "Sum", 60, T - 3600, T + 60))[-1] is None


@pytest.mark.parametrize(
    ("later", "fine", "coarse"),
    [
        pytest.param(9, [1.0], [1.0], id="inside-both"),
        pytest.param(10, [None], [1.0], id="fine-gone"),
        pytest.param(19, [None], [1.0], id="coarse-last-second"),
        pytest.param(20, [None], [None], id="both-gone"),
    ],
)
def test_buckets_age_out_after_their_keep_window(later, fine, coarse):
    h, clock = history(fine_s=1, fine_keep_s=10, coarse_s=5, coarse_keep_s=20)
    h.record("f", 10, error=False, cold=False)
    clock.now = T + later
    assert values(h.series("f", "Invocations", "Sum", 1, T, T + 1)) == fine
    assert values(h.series("f", "Invocations", "Sum", 5, T - 100, T + 5))[-1] == coarse[0]


def test_old_buckets_are_pruned_as_new_ones_come():
    h, clock = history(fine_s=1, fine_keep_s=10, coarse_s=5, coarse_keep_s=20)
    for second in range(100):
        clock.now = T + second
        h.record("f", 10, error=False, cold=False)
        h.count("f", "Throttles")
    fine, coarse = h._rings["f"]  # the memory bound itself
    assert sorted(fine.slots) == [int(T) + s for s in range(90, 100)]
    assert sorted(coarse.slots) == [int(T) // 5 + s for s in range(16, 20)]
    assert values(h.series("f", "Invocations", "Sum", 5, T, T + 100)) == [None] * 16 + [5.0] * 4


def test_a_clock_that_steps_back_still_counts():
    h, clock = history()
    clock.now = T + 30
    h.record("f", 10, error=False, cold=False)
    clock.now = T + 10
    h.record("f", 10, error=False, cold=False)
    clock.now = T + 30
    h.record("f", 10, error=False, cold=False)
    assert values(h.series("f", "Invocations", "Sum", 10, T, T + 40)) == [None, 1.0, None, 2.0]


def test_forget_drops_a_function():
    h, _ = history()
    h.record("f", 10, error=False, cold=False)
    h.record("g", 10, error=False, cold=False)
    h.forget("f")
    h.forget("never-seen")
    assert h.functions() == ["g"]
    assert one(h, "Invocations", "Sum") is None
    assert one(h, "Invocations", "Sum", "*") == 1.0


@pytest.mark.parametrize(
    ("metric", "statistic", "period_s", "message"),
    [
        ("Invocations", "Sum", 0, "positive multiple of 2s"),
        ("Invocations", "Sum", -60, "positive multiple of 2s"),
        ("Invocations", "Sum", 3, "positive multiple of 2s"),
        ("Invocations", "Median", 60, "unknown statistic 'Median'"),
        ("Invocations", "p101", 60, "unknown statistic 'p101'"),
        ("Invocations", "P50", 60, "unknown statistic 'P50'"),
        ("Invocations", "p", 60, "unknown statistic 'p'"),
        ("Latency", "Sum", 60, "unknown metric 'Latency'"),
    ],
)
def test_series_refuses_a_bad_period_statistic_or_metric(metric, statistic, period_s, message):
    h, _ = history(fine_s=2)
    with pytest.raises(ValueError, match=message):
        h.series("f", metric, statistic, period_s, T, T + 60)


def test_series_refuses_too_many_points():
    h, _ = history()
    with pytest.raises(ValueError, match="at most 100800"):
        h.series("f", "Invocations", "Sum", 1, 0, T)


@pytest.mark.parametrize("metric", ["Invocations", "Errors", "Duration", "Nonsense"])
def test_count_takes_only_events_that_are_not_invocations(metric):
    h, _ = history()
    with pytest.raises(ValueError, match="Throttles or DeadLetters"):
        h.count("f", metric)
    assert h.functions() == []


def test_a_total_over_the_last_hour_reads_the_minute_buckets():
    now = [1_796_000_000.0]
    history = MetricHistory(clock=lambda: now[0])
    for ms in (10.0, 20.0, 30.0, 1000.0):
        history.record("f", ms, error=ms > 100, cold=False)
        now[0] += 600
    start, end = now[0] - 3600, now[0]
    assert history.total("f", "Invocations", "Sum", start, end) == 4.0
    assert history.total("f", "Errors", "Sum", start, end) == 1.0
    assert history.total("f", "ErrorRate", "Average", start, end) == 25.0
    assert history.total("f", "Duration", "Maximum", start, end) == 1000.0
    assert history.total("ghost", "Invocations", "Sum", start, end) is None
