"""The alarm monitor's pure parts: which periods an evaluation reads, and which state changes
are notified."""

from __future__ import annotations

import pytest

from mlambda.observe.alarm_monitor import notifies, window
from mlambda.observe.alarm_rule import rule_from_dict
from mlambda.observe.alarms import LOOKBACK

RULE = {"name": "a", "function": "f", "metric": "Errors", "statistic": "Sum",
        "comparison": "GreaterThanThreshold", "threshold": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("period", "n", "now", "end"),
    [(60, 3, 1_000_030.0, 1_000_020.0), (1, 2, 50.5, 50.0), (300, 1, 600.0, 600.0)],
)
def test_the_window_is_the_complete_periods_before_now_and_the_look_back(period, n, now, end):
    rule = rule_from_dict({**RULE, "period": period, "evaluation_periods": n})
    assert window(rule, now) == (end - (n + LOOKBACK) * period, end)


@pytest.mark.parametrize(
    ("notify_on", "old", "new", "sent"),
    [
        (None, "OK", "ALARM", True),
        (None, "ALARM", "OK", True),
        (None, "INSUFFICIENT_DATA", "OK", False),  # first data, not a recovery
        (None, "INSUFFICIENT_DATA", "ALARM", True),
        (None, "OK", "INSUFFICIENT_DATA", False),
        (["ALARM", "OK", "INSUFFICIENT_DATA"], "OK", "INSUFFICIENT_DATA", True),
        (["ALARM"], "ALARM", "OK", False),
    ],
)
def test_a_change_is_notified_when_its_new_state_is_asked_for(notify_on, old, new, sent):
    extra = {} if notify_on is None else {"notify_on": notify_on}
    assert notifies(rule_from_dict({**RULE, **extra}), old, new) is sent
