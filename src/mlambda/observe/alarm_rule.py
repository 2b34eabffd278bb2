"""An alarm's rule (CloudWatch's metric alarm): what it watches, when it alarms, whom it tells;
read from JSON or TOML and checked key by key (pure).

    rule = rule_from_dict({"name": "errors", "function": "resize", "metric": "Errors",
                           "statistic": "Sum", "comparison": "GreaterThanThreshold",
                           "threshold": 5, "evaluation_periods": 3, "datapoints_to_alarm": 2})
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from mlambda.errors import InvalidRequest

METRICS = ("Invocations", "Errors", "ErrorRate", "Throttles", "Duration", "ColdStarts",
           "Predictions", "DeadLetters")  # fmt: skip
COUNTS = ("Invocations", "Errors", "Throttles", "ColdStarts", "Predictions", "DeadLetters")
STATISTICS = ("Sum", "Average", "Minimum", "Maximum", "SampleCount", "p50", "p90", "p95", "p99")
COMPARISONS = ("GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold",
               "LessThanOrEqualToThreshold")  # fmt: skip
MISSING = ("missing", "ignore", "breaching", "notBreaching")
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
FORMATS = ("json", "slack")
KEYS = ("name", "function", "metric", "statistic", "comparison", "threshold", "period",
        "evaluation_periods", "datapoints_to_alarm", "treat_missing_data", "webhooks",
        "webhook_format", "notify_function", "notify_on")  # fmt: skip
NOTIFY_ON = ("ALARM", "OK")  # by default, a transition into these states is notified
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FUNCTION = re.compile(r"[A-Za-z0-9_-]{1,64}")  # spec.NAME_PATTERN, not imported: spec is heavy
_PERCENTILE = re.compile(r"p(0|[1-9]\d*)(\.\d+)?")


@dataclasses.dataclass(frozen=True)
class AlarmRule:
    name: str
    function: str  # a function name, or "*" for all functions together
    metric: str
    statistic: str
    comparison: str
    threshold: float
    period_s: int = 60
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None
    treat_missing_data: str = "missing"
    webhooks: tuple[str, ...] = ()
    webhook_format: str = "json"
    notify_function: str = ""
    notify_on: tuple[str, ...] = NOTIFY_ON

    @property
    def m(self) -> int:
        """Datapoints to alarm: the M of "M out of N"."""
        return self.datapoints_to_alarm or self.evaluation_periods


def rule_from_dict(data: Mapping[str, Any]) -> AlarmRule:
    """The rule a JSON/TOML table describes; InvalidRequest names the faulty key and value."""
    if not isinstance(data, Mapping):
        raise InvalidRequest(f"an alarm must be an object of {', '.join(KEYS)}, got {data!r:.60}")
    for key in data:
        if key not in KEYS:
            hint = _close(key, KEYS) or f"; allowed: {', '.join(KEYS)}"
            raise InvalidRequest(f"alarm: unknown key {key!r}{hint}")
    name = _need(data, "name", "alarm:")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequest(f"alarm: name must be 1-64 of A-Z a-z 0-9 _ . -, got {name!r}")
    at = f"alarm {name!r}:"
    # The required keys in the order a reader meets them, so that the first fault is reported.
    function = _need(data, "function", at)
    if function != "*":
        _function_name(function, f"{at} function", "a function name or '*'")
    metric = _choice(_need(data, "metric", at), f"{at} metric", METRICS)
    statistic = _statistic(_need(data, "statistic", at), metric, at)
    comparison = _choice(_need(data, "comparison", at), f"{at} comparison", COMPARISONS)
    threshold = _threshold(_need(data, "threshold", at), metric, at)
    period = _whole(data.get("period", 60), f"{at} period", 1, 86400)
    if period > 60 and period % 60:
        raise InvalidRequest(f"{at} period above 60 must be a multiple of 60 seconds, got {period}")
    n = _whole(data.get("evaluation_periods", 1), f"{at} evaluation_periods", 1, 1440)
    # PutMetricAlarm's limit: one day in all for periods under an hour, seven days otherwise.
    most = 86400 if period < 3600 else 604800
    if period * n > most:
        raise InvalidRequest(
            f"{at} period * evaluation_periods is {period} * {n} = {period * n} seconds; "
            f"at most {most} are allowed"
        )
    m = data.get("datapoints_to_alarm")
    notify = data.get("notify_function", "")
    if notify != "":
        _function_name(notify, f"{at} notify_function", "a function name or ''")
    return AlarmRule(
        name=name,
        function=function,
        metric=metric,
        statistic=statistic,
        comparison=comparison,
        threshold=threshold,
        period_s=period,
        evaluation_periods=n,
        datapoints_to_alarm=None if m is None else _whole(m, f"{at} datapoints_to_alarm", 1, n),
        treat_missing_data=_choice(
            data.get("treat_missing_data", "missing"), f"{at} treat_missing_data", MISSING
        ),
        webhooks=_webhooks(data.get("webhooks", []), at),
        webhook_format=_choice(data.get("webhook_format", "json"), f"{at} webhook_format", FORMATS),
        notify_function=notify,
        notify_on=_notify_on(data.get("notify_on", NOTIFY_ON), at),
    )


def rule_to_dict(rule: AlarmRule) -> dict[str, Any]:
    """The keys ``rule_from_dict`` reads (datapoints_to_alarm only when set: TOML has no null)."""
    data = {key: getattr(rule, key) for key in KEYS if hasattr(rule, key)}
    data |= {"period": rule.period_s, "webhooks": list(rule.webhooks)}
    data |= {"notify_on": list(rule.notify_on)}
    return {key: data[key] for key in KEYS if data.get(key) is not None}


def _need(data: Mapping[str, Any], key: str, at: str) -> Any:
    if key not in data:
        raise InvalidRequest(f"{at} missing required key {key!r}")
    return data[key]


def _close(value: object, allowed: Sequence[str]) -> str:
    """The "did you mean" hint: the allowed name nearest ``value``, case aside; else ""."""
    folded = {name.casefold(): name for name in allowed}
    close = difflib.get_close_matches(str(value).casefold(), folded, n=1)
    return f"; did you mean {folded[close[0]]!r}?" if close and isinstance(value, str) else ""


def _choice(value: object, field: str, allowed: Sequence[str]) -> str:
    if isinstance(value, str) and value in allowed:
        return value
    hint = _close(value, allowed)
    raise InvalidRequest(f"{field} must be one of {', '.join(allowed)}, got {value!r}{hint}")


def _whole(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"{field} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _function_name(value: object, field: str, what: str) -> None:
    if not isinstance(value, str) or not _FUNCTION.fullmatch(value):
        raise InvalidRequest(f"{field} must be {what} (1-64 of A-Z a-z 0-9 _ -), got {value!r}")


def _statistic(value: object, metric: str, at: str) -> str:
    if metric == "ErrorRate" and value != "Average":
        raise InvalidRequest(f"{at} statistic must be 'Average' for ErrorRate, got {value!r}")
    if isinstance(value, str) and _PERCENTILE.fullmatch(value):
        if not 0 < float(value[1:]) < 100:
            raise InvalidRequest(f"{at} statistic {value!r}: a percentile is p0 < pNN < p100")
        if metric in COUNTS:
            raise InvalidRequest(
                f"{at} statistic {value!r}: a percentile of the count {metric} makes no sense; "
                f"use Sum, Average, Minimum, Maximum or SampleCount"
            )
        return value
    return _choice(value, f"{at} statistic", STATISTICS)


def _threshold(value: object, metric: str, at: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest(f"{at} threshold must be a finite number, got {value!r}")
    if metric == "ErrorRate" and not 0 <= value <= 100:
        raise InvalidRequest(
            f"{at} threshold of ErrorRate (a percentage) must be 0-100, got {value}"
        )
    return float(value)


def _webhooks(value: object, at: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise InvalidRequest(f"{at} webhooks must be a list of URLs, got {value!r:.80}")
    for i, url in enumerate(value):
        if not _is_url(url):
            raise InvalidRequest(f"{at} webhooks[{i}] must be an http(s):// URL, got {url!r}")
    return tuple(value)


def _is_url(url: object) -> bool:
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        return parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _notify_on(value: object, at: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise InvalidRequest(f"{at} notify_on must be a list of states, got {value!r:.80}")
    for state in value:
        _choice(state, f"{at} notify_on", STATES)
    return tuple(value)
