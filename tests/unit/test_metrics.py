"""Metric labels stay bounded: user code names its own exceptions."""

from __future__ import annotations

from mlambda.observe.metrics import MAX_ERROR_TYPES, Metrics


def test_error_types_past_the_bound_count_as_other_and_known_ones_keep_their_name():
    metrics = Metrics()
    names = [metrics.error_type("f", "1", f"E{n}") for n in range(MAX_ERROR_TYPES + 5)]
    assert names[:MAX_ERROR_TYPES] == [f"E{n}" for n in range(MAX_ERROR_TYPES)]
    assert set(names[MAX_ERROR_TYPES:]) == {"Other"}
    assert metrics.error_type("f", "1", "E0") == "E0"
    assert metrics.error_type("g", "1", "E99") == "E99"  # per function version


def test_a_removed_function_forgets_its_error_types():
    metrics = Metrics()
    for n in range(MAX_ERROR_TYPES):
        metrics.error_type("f", "1", f"E{n}")
    metrics.forget("f")
    assert metrics.error_type("f", "1", "New") == "New"
