"""CloudWatch-style metric alarms: the "M out of N" evaluation of a rule (alarm_rule.py) over
its datapoints (pure: no I/O, no clock); alarm_notices.py has what a state change sends.

A rule watches one statistic of one metric of a function (or of all of them: ``"*"``), one value
per period. Each evaluation gets the last periods' values, oldest first, ``None`` where a period
had no data, and returns the new state with a CloudWatch-like reason::

    rule = rule_from_dict({"name": "errors", "function": "resize", "metric": "Errors",
                           "statistic": "Sum", "comparison": "GreaterThanThreshold",
                           "threshold": 5, "evaluation_periods": 3, "datapoints_to_alarm": 2})
    result = evaluate(rule, [0.0, 9.0, 12.0], previous="OK")   # result.state == "ALARM"
    if transition("OK", result):
        body = notification(rule, "OK", result, at=now)        # POST it to rule.webhooks

Missing data follows "Configuring how CloudWatch alarms treat missing data"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html).
Pass the evaluation range, N + ``LOOKBACK`` periods as CloudWatch does, to get its look-back over
missing periods; exactly N periods works too.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Sequence, Sized
from datetime import UTC, datetime

from mlambda.observe.alarm_rule import STATES, AlarmRule

LOOKBACK = 2  # extra periods in CloudWatch's evaluation range (5 for N = 3 in its examples)
_COMPARE: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
Points = tuple[float | None, ...]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    state: str
    reason: str
    datapoints: Points


def breaches(rule: AlarmRule, value: float) -> bool:
    """Whether one datapoint is on the alarming side of the threshold."""
    return _COMPARE[rule.comparison][0](value, rule.threshold)


def evaluate(
    rule: AlarmRule,
    datapoints: Sequence[float | None],
    previous: str,
    *,
    end: float | None = None,
) -> Evaluation:
    """The state after the last periods' ``datapoints`` (oldest first, at least N of them).

    ``end`` (epoch seconds, where the newest period ends) stamps each datapoint in the reason.
    """
    points = tuple(None if v is None or math.isnan(v) else float(v) for v in datapoints)
    if len(points) < rule.evaluation_periods:
        raise ValueError(f"{rule.name}: {len(points)} datapoints, {rule.evaluation_periods} needed")
    if previous not in STATES:
        raise ValueError(f"{rule.name}: previous state {previous!r} is not one of {STATES}")
    state, reason = _decide(rule, points, previous, _labels(rule, points, end))
    return Evaluation(state, reason, points)


def transition(previous: str, evaluation: Evaluation) -> bool:
    """Whether the evaluation changes the state (notifications go out only then)."""
    return evaluation.state != previous


def _decide(rule: AlarmRule, points: Points, previous: str, labels: list[str]) -> tuple[str, str]:
    n, m, treat = rule.evaluation_periods, rule.m, rule.treat_missing_data
    values = {i: v for i, v in enumerate(points) if v is not None}
    real, bad = list(values), [i for i, v in values.items() if breaches(rule, v)]
    if len(real) >= n:
        # Enough real data: the N newest real datapoints decide, whatever the missing-data setting.
        return _crossed(rule, labels, real[-n:], [i for i in bad if i >= real[-n]])
    if treat in ("breaching", "notBreaching"):
        # Fill as few missing periods (the newest) as make N, as the treatment says.
        fills = [i for i, v in enumerate(points) if v is None][len(real) - n :]
        bad += fills if treat == "breaching" else []
        note = f"; {len(fills)} missing datapoint{_s(fills)} treated as {treat}"
        return _crossed(rule, labels, sorted(real + fills), sorted(bad), note)
    if len(bad) >= m or len(bad) < len(real):
        return _crossed(rule, labels, real, bad)
    # Left: fewer than N real datapoints, none of them good, and missing data not filled in.
    why = f"no datapoints were received in the last {len(points)} periods"
    if real:
        why = (
            f"{len(bad)} datapoint{_s(bad)} {_list(labels, bad)} {_was(bad)} "
            f"{_COMPARE[rule.comparison][1]} the threshold ({rule.threshold!r}), "
            f"fewer than the {m} needed to alarm"
        )
    if treat == "ignore":
        return previous, f"Missing data ignored: {why}; the state stays {previous}."
    # CloudWatch's premature-alarm rule: a breach at least M periods old, and only missing since.
    age = len(points) - bad[0] if bad else 0
    if age >= m:
        since = f"the oldest is {age} periods old and no datapoint since was within the threshold"
        return "ALARM", f"Threshold Crossed: {why}, but {since}."
    return "INSUFFICIENT_DATA", f"Insufficient Data: {why}."


def _crossed(
    rule: AlarmRule, labels: list[str], used: list[int], bad: list[int], note: str = ""
) -> tuple[str, str]:
    """ALARM if at least M of the ``used`` datapoints breach, else OK; the reason names them."""
    alarm = len(bad) >= rule.m
    shown = bad if alarm else [i for i in used if i not in bad]
    reason = (
        f"Threshold Crossed: {len(shown)} out of the last {len(used)} datapoint{_s(used)} "
        f"{_list(labels, shown)} {_was(shown)} {'' if alarm else 'not '}"
        f"{_COMPARE[rule.comparison][1]} the threshold ({rule.threshold!r})"
    )
    if alarm:
        reason += f" (minimum {rule.m} datapoint{_s(range(rule.m))} for OK -> ALARM transition)"
    return ("ALARM" if alarm else "OK"), f"{reason}{note}."


def _labels(rule: AlarmRule, points: Points, end: float | None) -> list[str]:
    """Each datapoint as a reason shows it, stamped with its period start when ``end`` is known."""
    labels = ["missing" if v is None else repr(v) for v in points]
    if end is not None:
        for i, start in enumerate(range(len(points), 0, -1)):
            when = datetime.fromtimestamp(end - start * rule.period_s, UTC)
            labels[i] += f" ({when:%d/%m/%y %H:%M:%S})"
    return labels


def _list(labels: list[str], indexes: list[int]) -> str:
    return f"[{', '.join(labels[i] for i in reversed(indexes))}]"


def _s(items: Sized) -> str:
    return "" if len(items) == 1 else "s"


def _was(items: Sized) -> str:
    return "was" if len(items) == 1 else "were"
