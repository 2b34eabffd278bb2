"""An invocation's spans laid out from the pool's measurements (tables)."""

from __future__ import annotations

from mlambda.observe.invocation_spans import MS, PlannedSpan, Timings, plan

T0 = 1_796_000_000 * 10**9


def _shape(spans: list[PlannedSpan]) -> list[tuple[str, str, int, int]]:
    return [(s.key, s.parent, (s.start_ns - T0) // MS, (s.end_ns - T0) // MS) for s in spans]


def test_a_warm_call_is_a_handler_span_ending_when_its_outcome_came_back():
    spans = plan(Timings(T0, T0 + 20 * MS, duration_ms=15.0))
    assert _shape(spans) == [("handler", "invoke", 5, 20)]
    assert spans[0].attributes == {"faas.coldstart": False}


def test_a_queued_call_waits_first_then_runs():
    spans = plan(Timings(T0, T0 + 50 * MS, queue_wait_ms=30.0, duration_ms=18.0))
    assert _shape(spans) == [("queue", "invoke", 0, 30), ("handler", "invoke", 32, 50)]


def test_a_cold_start_lays_its_parts_end_to_end_before_the_instance_was_ready():
    timings = Timings(T0, T0 + 100 * MS, queue_wait_ms=60.0, duration_ms=30.0,
                      init_parts=(0.0, 5.0, 20.0, 25.0), tier="template")  # fmt: skip
    spans = plan(timings)
    assert _shape(spans) == [
        ("queue", "invoke", 0, 60),
        ("start", "invoke", 10, 60),
        ("fork", "start", 10, 15),
        ("import", "start", 15, 35),
        ("init", "start", 35, 60),
        ("handler", "invoke", 70, 100),
    ]
    assert spans[1].attributes == {"mlambda.tier": "template"}
    assert spans[-1].attributes["faas.coldstart"] is True


def test_a_shared_call_says_how_many_it_carried():
    spans = plan(Timings(T0, T0 + 10 * MS, duration_ms=8.0, batch_size=16))
    assert spans[-1].attributes["mlambda.batch_size"] == 16
