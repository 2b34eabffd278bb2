"""CloudWatch-style metric alarms: CloudWatch's missing-data tables, M out of N with each
comparison, the rule's validation, its round trip, and the notification bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mlambda.errors import InvalidRequest
from mlambda.observe.alarm_notices import alarm_event, notification, slack_message
from mlambda.observe.alarm_rule import (
    KEYS,
    NOTIFY_ON,
    STATES,
    AlarmRule,
    rule_from_dict,
    rule_to_dict,
)
from mlambda.observe.alarms import LOOKBACK, Evaluation, breaches, evaluate, transition

BASE = {
    "name": "errors",
    "function": "resize",
    "metric": "Errors",
    "statistic": "Sum",
    "comparison": "GreaterThanThreshold",
    "threshold": 5,
}
KEEP = "retain"  # the tables' "Retain current state"


def rule(**fields: Any) -> AlarmRule:
    return rule_from_dict({**BASE, **fields})


def points(row: str) -> list[float | None]:
    """A row as the AWS page writes it: 0 within the threshold (5), X breaching, - missing."""
    return [{"0": 1.0, "X": 10.0, "-": None}[p] for p in row.split()]


# "Configuring how CloudWatch alarms treat missing data", the tables of its section "How alarm
# state is evaluated when data is missing": evaluation range 5, Evaluation Periods 3.
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html
# Columns: MISSING, IGNORE, BREACHING, NOT BREACHING.
THREE_OF_THREE = [
    ("0 - X - X", "OK", "OK", "OK", "OK"),
    ("0 - - - -", "OK", "OK", "OK", "OK"),
    ("- - - - -", "INSUFFICIENT_DATA", KEEP, "ALARM", "OK"),
    ("0 X X - X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("- - X - -", "ALARM", KEEP, "ALARM", "OK"),
    # Two rows of the page's earlier revision (the "Using Amazon CloudWatch alarms" page, 2019):
    # a breach too recent to alarm on alone, and one old enough.
    ("- - - - X", "INSUFFICIENT_DATA", KEEP, "ALARM", "OK"),
    ("X - - - -", "ALARM", KEEP, "ALARM", "OK"),
]
TWO_OF_THREE = [
    ("0 - X - X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 0 X 0 X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 - X - -", "OK", "OK", "ALARM", "OK"),
    ("- - - - 0", "OK", "OK", "ALARM", "OK"),
    ("- - - X -", "ALARM", KEEP, "ALARM", "OK"),
]
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
TABLE = [
    pytest.param(m, row, treat, previous, states[i], id=f"{m}of3[{row}]-{treat}-{previous}")
    for m, table in ((3, THREE_OF_THREE), (2, TWO_OF_THREE))
    for row, *states in table
    for i, treat in enumerate(TREATMENTS)
    for previous in STATES
]


@pytest.mark.parametrize(("m", "row", "treat", "previous", "expected"), TABLE)
def test_missing_data_tables(m: int, row: str, treat: str, previous: str, expected: str) -> None:
    alarm = rule(evaluation_periods=3, datapoints_to_alarm=m, treat_missing_data=treat)
    result = evaluate(alarm, points(row), previous)
    assert result.state == (previous if expected == KEEP else expected), result.reason
    assert result.datapoints == tuple(points(row))


def test_the_tables_range_is_n_plus_lookback() -> None:
    assert len(points(THREE_OF_THREE[0][0])) == 3 + LOOKBACK


EXACTLY_N = [
    # (M, datapoints, treat_missing_data, previous, state): N = 3 entries, no look-back.
    (3, "X X X", "missing", "OK", "ALARM"),
    (3, "X X 0", "missing", "ALARM", "OK"),
    (3, "X - -", "missing", "OK", "ALARM"),
    (3, "- - X", "missing", "OK", "INSUFFICIENT_DATA"),
    (3, "- - X", "ignore", "OK", "OK"),
    (2, "- X X", "missing", "OK", "ALARM"),
    (2, "- X X", "ignore", "OK", "ALARM"),
    (2, "- 0 X", "missing", "ALARM", "OK"),
    (2, "- - 0", "ignore", "ALARM", "OK"),
    (2, "- - -", "ignore", "INSUFFICIENT_DATA", "INSUFFICIENT_DATA"),
    (2, "- - X", "breaching", "OK", "ALARM"),
    (2, "- 0 X", "breaching", "OK", "ALARM"),
    (2, "0 0 -", "breaching", "OK", "OK"),
    (2, "- - X", "notBreaching", "ALARM", "OK"),
    (1, "- - X", "missing", "OK", "ALARM"),
    (1, "0 0 X", "notBreaching", "OK", "ALARM"),
]


@pytest.mark.parametrize(("m", "row", "treat", "previous", "expected"), EXACTLY_N)
def test_exactly_n_datapoints(m: int, row: str, treat: str, previous: str, expected: str) -> None:
    alarm = rule(evaluation_periods=3, datapoints_to_alarm=m, treat_missing_data=treat)
    assert evaluate(alarm, points(row), previous).state == expected


M_OF_N = [
    # (comparison, M, datapoints oldest first, state) against the threshold 5 with N = 3.
    ("GreaterThanThreshold", 3, [6, 7, 8], "ALARM"),
    ("GreaterThanThreshold", 3, [6, 5, 8], "OK"),
    ("GreaterThanThreshold", 1, [5, 5, 5], "OK"),
    ("GreaterThanThreshold", 2, [6, 0, 5.5], "ALARM"),
    ("GreaterThanOrEqualToThreshold", 3, [5, 5, 5], "ALARM"),
    ("GreaterThanOrEqualToThreshold", 2, [5, 4.99, 4], "OK"),
    ("GreaterThanOrEqualToThreshold", 2, [4, 5, 5], "ALARM"),
    ("LessThanThreshold", 1, [5, 5, 5], "OK"),
    ("LessThanThreshold", 2, [4, 6, 4.9], "ALARM"),
    ("LessThanThreshold", 3, [4, 6, 4], "OK"),
    ("LessThanOrEqualToThreshold", 3, [5, 5, 5], "ALARM"),
    ("LessThanOrEqualToThreshold", 2, [5, 6, 6], "OK"),
    ("LessThanOrEqualToThreshold", 2, [-1, 6, 5], "ALARM"),
]


@pytest.mark.parametrize(("comparison", "m", "values", "expected"), M_OF_N)
def test_m_out_of_n(comparison: str, m: int, values: list[float], expected: str) -> None:
    alarm = rule(comparison=comparison, evaluation_periods=3, datapoints_to_alarm=m)
    assert evaluate(alarm, values, "OK").state == expected
    assert evaluate(alarm, values, "ALARM").state == expected


@pytest.mark.parametrize(
    ("comparison", "below", "equal", "above"),
    [
        ("GreaterThanThreshold", False, False, True),
        ("GreaterThanOrEqualToThreshold", False, True, True),
        ("LessThanThreshold", True, False, False),
        ("LessThanOrEqualToThreshold", True, True, False),
    ],
)
def test_breaches(comparison: str, below: bool, equal: bool, above: bool) -> None:
    alarm = rule(comparison=comparison, threshold=2.5)
    assert [breaches(alarm, v) for v in (2.4, 2.5, 2.6)] == [below, equal, above]


def test_only_the_n_newest_real_datapoints_count() -> None:
    alarm = rule(evaluation_periods=3)
    assert evaluate(alarm, [9, 9, 9, 0, 0, 0], "ALARM").state == "OK"
    assert evaluate(alarm, [0, 0, 9, 9, None, 9], "OK").state == "ALARM"


def test_nan_is_missing() -> None:
    alarm = rule(evaluation_periods=2, treat_missing_data="breaching")
    assert evaluate(alarm, [float("nan"), 10.0], "OK").state == "ALARM"


END = datetime(2026, 12, 7, 18, 3, tzinfo=UTC).timestamp()
TWO = {"evaluation_periods": 3, "datapoints_to_alarm": 2}
REASONS = [
    (
        TWO,
        [12.5, 1.0, 30.0],
        END,
        "Threshold Crossed: 2 out of the last 3 datapoints [30.0 (07/12/26 18:02:00), "
        "12.5 (07/12/26 18:00:00)] were greater than the threshold (5.0) "
        "(minimum 2 datapoints for OK -> ALARM transition).",
    ),
    (
        TWO,
        [12.5, 1.0, 3.0],
        None,
        "Threshold Crossed: 2 out of the last 3 datapoints [3.0, 1.0] "
        "were not greater than the threshold (5.0).",
    ),
    (
        {"comparison": "LessThanOrEqualToThreshold"},
        [7.0],
        END,
        "Threshold Crossed: 1 out of the last 1 datapoint [7.0 (07/12/26 18:02:00)] "
        "was not less than or equal to the threshold (5.0).",
    ),
    (
        {**TWO, "treat_missing_data": "breaching"},
        [None, 1.0, None],
        END,
        "Threshold Crossed: 2 out of the last 3 datapoints [missing (07/12/26 18:02:00), "
        "missing (07/12/26 18:00:00)] were greater than the threshold (5.0) (minimum 2 "
        "datapoints for OK -> ALARM transition); 2 missing datapoints treated as breaching.",
    ),
    (
        {"evaluation_periods": 3, "treat_missing_data": "notBreaching"},
        [None, None, None, None, 9.0],
        None,
        "Threshold Crossed: 2 out of the last 3 datapoints [missing, missing] were not "
        "greater than the threshold (5.0); 2 missing datapoints treated as notBreaching.",
    ),
    (
        {"evaluation_periods": 3},
        [None] * 5,
        END,
        "Insufficient Data: no datapoints were received in the last 5 periods.",
    ),
    (
        {"evaluation_periods": 3, "treat_missing_data": "ignore"},
        [None] * 5,
        END,
        "Missing data ignored: no datapoints were received in the last 5 periods; "
        "the state stays ALARM.",
    ),
    (
        {"evaluation_periods": 3},
        [None, None, None, None, 9.0],
        None,
        "Insufficient Data: 1 datapoint [9.0] was greater than the threshold (5.0), "
        "fewer than the 3 needed to alarm.",
    ),
    (
        {"evaluation_periods": 3},
        [None, None, 9.0, None, None],
        END,
        "Threshold Crossed: 1 datapoint [9.0 (07/12/26 18:00:00)] was greater than the "
        "threshold (5.0), fewer than the 3 needed to alarm, but the oldest is 3 periods old "
        "and no datapoint since was within the threshold.",
    ),
]


@pytest.mark.parametrize(("fields", "values", "end", "reason"), REASONS)
def test_reasons(fields: dict[str, Any], values: list[float | None], end: Any, reason: str) -> None:
    assert evaluate(rule(**fields), values, "ALARM", end=end).reason == reason


def test_reason_stamps_follow_the_period() -> None:
    alarm = rule(period=300, evaluation_periods=2)
    reason = evaluate(alarm, [9.0, 9.0], "OK", end=END).reason
    assert "[9.0 (07/12/26 17:58:00), 9.0 (07/12/26 17:53:00)]" in reason


@pytest.mark.parametrize(
    ("values", "previous", "message"),
    [([1.0, 2.0], "OK", "2 datapoints, 3 needed"), ([1.0] * 3, "ok", "previous state 'ok'")],
)
def test_evaluate_refuses_caller_mistakes(values: list[float], previous: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(rule(evaluation_periods=3), values, previous)


@pytest.mark.parametrize(
    ("previous", "state", "changed"),
    [("OK", "OK", False), ("OK", "ALARM", True), ("INSUFFICIENT_DATA", "OK", True)],
)
def test_transition(previous: str, state: str, changed: bool) -> None:
    assert transition(previous, Evaluation(state, "", ())) is changed


def test_defaults() -> None:
    alarm = rule()
    assert alarm == AlarmRule("errors", "resize", "Errors", "Sum", "GreaterThanThreshold", 5.0)
    assert (alarm.period_s, alarm.evaluation_periods, alarm.m) == (60, 1, 1)
    assert (alarm.treat_missing_data, alarm.webhooks, alarm.webhook_format) == (
        "missing",
        (),
        "json",
    )
    assert alarm.notify_on == NOTIFY_ON == ("ALARM", "OK")
    assert rule(evaluation_periods=4).m == 4
    assert rule(evaluation_periods=4, datapoints_to_alarm=2).m == 2


GOOD = [
    {},
    {"function": "*", "metric": "Duration", "statistic": "p99.9", "threshold": 250.5},
    {"metric": "Duration", "statistic": "p50", "comparison": "LessThanThreshold"},
    {"metric": "ErrorRate", "statistic": "Average", "threshold": 0},
    {"metric": "ErrorRate", "statistic": "Average", "threshold": 100},
    {"metric": "Invocations", "statistic": "SampleCount", "threshold": -1},
    {"period": 1, "evaluation_periods": 1440, "datapoints_to_alarm": 1440},
    {"period": 86400, "evaluation_periods": 7, "datapoints_to_alarm": None},
    {"period": 3600, "evaluation_periods": 168},
    {"period": 120, "evaluation_periods": 720},
    {"treat_missing_data": "notBreaching", "webhook_format": "slack"},
    {"webhooks": ["https://hooks.slack.com/services/T0/B0/x", "http://10.0.0.5:8080/alarm"]},
    {"notify_function": "on-alarm", "statistic": "Maximum", "metric": "DeadLetters"},
    {"notify_on": ["ALARM", "OK", "INSUFFICIENT_DATA"]},
    {"notify_on": []},
]


@pytest.mark.parametrize("fields", GOOD)
def test_round_trip(fields: dict[str, Any]) -> None:
    alarm = rule(**fields)
    data = rule_to_dict(alarm)
    assert rule_from_dict(data) == alarm
    assert set(data) <= set(KEYS)
    assert ("datapoints_to_alarm" in data) is (alarm.datapoints_to_alarm is not None)


def test_rule_to_dict() -> None:
    alarm = rule(period=300, webhooks=("https://example.com/hook",), datapoints_to_alarm=1)
    assert rule_to_dict(alarm) == {
        **BASE,
        "threshold": 5.0,
        "period": 300,
        "evaluation_periods": 1,
        "datapoints_to_alarm": 1,
        "treat_missing_data": "missing",
        "webhooks": ["https://example.com/hook"],
        "webhook_format": "json",
        "notify_function": "",
        "notify_on": ["ALARM", "OK"],
    }


BAD: list[tuple[Any, str]] = [
    (["errors"], "an alarm must be an object of name, function"),
    ({"perod": 60}, "alarm: unknown key 'perod'; did you mean 'period'?"),
    ({"zzz": 1}, "alarm: unknown key 'zzz'; allowed: name, function, metric"),
    ({"name": "bad name"}, "alarm: name must be 1-64 of A-Z a-z 0-9 _ . -, got 'bad name'"),
    ({"name": ""}, "alarm: name must be 1-64 of A-Z a-z 0-9 _ . -, got ''"),
    ({"name": "n" * 65}, "alarm: name must be 1-64"),
    ({"name": 7}, "alarm: name must be 1-64 of A-Z a-z 0-9 _ . -, got 7"),
    ({"function": "my fn"}, "alarm 'errors': function must be a function name or '*'"),
    ({"function": "my.fn"}, "(1-64 of A-Z a-z 0-9 _ -), got 'my.fn'"),
    ({"function": None}, "alarm 'errors': function must be a function name or '*'"),
    ({"metric": "Eror"}, "alarm 'errors': metric must be one of Invocations, Errors, ErrorRate"),
    ({"metric": "errors"}, "got 'errors'; did you mean 'Errors'?"),
    ({"metric": 3}, "alarm 'errors': metric must be one of Invocations"),
    ({"statistic": "Averag"}, "statistic must be one of Sum, Average,"),
    ({"statistic": "sum"}, "got 'sum'; did you mean 'Sum'?"),
    ({"statistic": "p99"}, "statistic 'p99': a percentile of the count Errors makes no sense"),
    ({"metric": "ColdStarts", "statistic": "p50"}, "a percentile of the count ColdStarts"),
    ({"metric": "Duration", "statistic": "p100"}, "statistic 'p100': a percentile is p0 < pNN"),
    ({"metric": "Duration", "statistic": "p0"}, "statistic 'p0': a percentile is"),
    ({"metric": "Duration", "statistic": "p-5"}, "statistic must be one of Sum"),
    (
        {"metric": "ErrorRate", "statistic": "Sum"},
        "statistic must be 'Average' for ErrorRate, got 'Sum'",
    ),
    ({"metric": "ErrorRate", "statistic": "p99"}, "must be 'Average' for ErrorRate, got 'p99'"),
    ({"comparison": "GreaterThan"}, "comparison must be one of GreaterThanThreshold,"),
    ({"comparison": "GreaterThan"}, "got 'GreaterThan'; did you mean 'GreaterThanThreshold'?"),
    ({"comparison": ">"}, "LessThanOrEqualToThreshold, got '>'"),
    ({"threshold": "5"}, "alarm 'errors': threshold must be a finite number, got '5'"),
    ({"threshold": True}, "threshold must be a finite number, got True"),
    ({"threshold": float("nan")}, "threshold must be a finite number, got nan"),
    ({"threshold": float("inf")}, "threshold must be a finite number, got inf"),
    (
        {"metric": "ErrorRate", "statistic": "Average", "threshold": 150},
        "threshold of ErrorRate (a percentage) must be 0-100, got 150",
    ),
    ({"period": 0}, "alarm 'errors': period must be a whole number from 1 to 86400, got 0"),
    ({"period": 86401}, "period must be a whole number from 1 to 86400, got 86401"),
    ({"period": 60.0}, "period must be a whole number from 1 to 86400, got 60.0"),
    ({"period": "60"}, "period must be a whole number from 1 to 86400, got '60'"),
    ({"period": 90}, "alarm 'errors': period above 60 must be a multiple of 60 seconds, got 90"),
    ({"evaluation_periods": 0}, "evaluation_periods must be a whole number from 1 to 1440, got 0"),
    ({"evaluation_periods": 1441}, "evaluation_periods must be a whole number from 1 to 1440"),
    ({"evaluation_periods": True}, "evaluation_periods must be a whole number from 1 to 1440"),
    (
        {"period": 120, "evaluation_periods": 721},
        "period * evaluation_periods is 120 * 721 = 86520 seconds; at most 86400 are allowed",
    ),
    (
        {"period": 3600, "evaluation_periods": 169},
        "period * evaluation_periods is 3600 * 169 = 608400 seconds; at most 604800",
    ),
    (
        {"evaluation_periods": 3, "datapoints_to_alarm": 4},
        "datapoints_to_alarm must be a whole number from 1 to 3, got 4",
    ),
    ({"datapoints_to_alarm": 0}, "datapoints_to_alarm must be a whole number from 1 to 1, got 0"),
    ({"treat_missing_data": "notbreaching"}, "did you mean 'notBreaching'?"),
    ({"treat_missing_data": None}, "treat_missing_data must be one of missing, ignore"),
    ({"webhooks": "https://x.io"}, "webhooks must be a list of URLs, got 'https://x.io'"),
    ({"webhooks": ["ftp://x.io"]}, "webhooks[0] must be an http(s):// URL, got 'ftp://x.io'"),
    ({"webhooks": ["https://a.io", "https://"]}, "webhooks[1] must be an http(s):// URL"),
    ({"webhooks": ["x.io/hook"]}, "webhooks[0] must be an http(s):// URL, got 'x.io/hook'"),
    ({"webhooks": ["http://[::1"]}, "got 'http://[::1'"),
    ({"webhooks": [5]}, "webhooks[0] must be an http(s):// URL, got 5"),
    ({"webhook_format": "slak"}, "webhook_format must be one of json, slack, got 'slak'"),
    ({"webhook_format": "slak"}, "did you mean 'slack'?"),
    ({"notify_function": "*"}, "notify_function must be a function name or ''"),
    ({"notify_function": 1}, "notify_function must be a function name or '' (1-64 of"),
    ({"notify_on": "ALARM"}, "alarm 'errors': notify_on must be a list of states, got 'ALARM'"),
    ({"notify_on": ["ALARM", "OKAY"]}, "notify_on must be one of OK, ALARM, INSUFFICIENT_DATA"),
    ({"notify_on": ["alarm"]}, "got 'alarm'; did you mean 'ALARM'?"),
    # The first fault in reading order is the one reported.
    ({"metric": "Latency", "statistic": None, "comparison": None}, "got 'Latency'"),
]


@pytest.mark.parametrize(("fields", "message"), BAD)
def test_bad_rules(fields: Any, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        rule_from_dict({**BASE, **fields} if isinstance(fields, dict) else fields)
    assert message in caught.value.message


@pytest.mark.parametrize("key", ["name", "function", "metric", "statistic", "threshold"])
def test_required_keys(key: str) -> None:
    data = {k: v for k, v in BASE.items() if k != key}
    at = "alarm:" if key == "name" else "alarm 'errors':"
    with pytest.raises(InvalidRequest, match=f"^{at} missing required key '{key}'$"):
        rule_from_dict(data)


def test_a_missing_key_after_a_bad_one() -> None:
    with pytest.raises(InvalidRequest, match=r"metric must be one of .* got 'Latency'"):
        rule_from_dict({"name": "x", "function": "f", "metric": "Latency"})
    with pytest.raises(InvalidRequest, match=r"^alarm 'x': missing required key 'statistic'$"):
        rule_from_dict({"name": "x", "function": "f", "metric": "Errors"})


AT = datetime(2026, 12, 7, 18, 1, tzinfo=UTC).timestamp() + 0.5


@pytest.mark.parametrize(
    ("fields", "statistic", "dimensions"),
    [
        ({}, {"StatisticType": "Statistic", "Statistic": "SUM"}, "resize"),
        (
            {"statistic": "SampleCount"},
            {"StatisticType": "Statistic", "Statistic": "SAMPLE_COUNT"},
            "resize",
        ),
        (
            {"function": "*", "metric": "Duration", "statistic": "p99.9"},
            {"StatisticType": "ExtendedStatistic", "ExtendedStatistic": "p99.9"},
            None,
        ),
    ],
)
def test_notification(fields: dict[str, Any], statistic: dict[str, str], dimensions: Any) -> None:
    alarm = rule(**fields, evaluation_periods=3, datapoints_to_alarm=2, period=300)
    new = Evaluation("ALARM", "Threshold Crossed: ...", (9.0, 9.0, 1.0))
    body = notification(alarm, "OK", new, AT, region="eu-west-1")
    assert body == {
        "AlarmName": "errors",
        "AlarmDescription": "",
        "NewStateValue": "ALARM",
        "OldStateValue": "OK",
        "NewStateReason": "Threshold Crossed: ...",
        "AWSAccountId": "000000000000",
        "AlarmArn": "arn:aws:cloudwatch:eu-west-1:000000000000:alarm:errors",
        "StateChangeTime": "2026-12-07T18:01:00.500+0000",
        "Region": "eu-west-1",
        "Trigger": {
            "MetricName": alarm.metric,
            "Namespace": "mlambda",
            **statistic,
            "Dimensions": [{"name": "FunctionName", "value": dimensions}] if dimensions else [],
            "Period": 300,
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 2,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 5.0,
            "TreatMissingData": "missing",
        },
    }


def test_notification_defaults() -> None:
    body = notification(rule(), "INSUFFICIENT_DATA", Evaluation("OK", "r", ()), 0.0)
    assert body["Region"] == "us-east-1"
    assert body["StateChangeTime"] == "1970-01-01T00:00:00.000+0000"
    assert body["Trigger"]["DatapointsToAlarm"] == 1


@pytest.mark.parametrize(
    ("state", "text"),
    [
        ("ALARM", ":rotating_light: ALARM: errors \u2014 why"),
        ("OK", ":white_check_mark: OK: errors \u2014 why"),
        ("INSUFFICIENT_DATA", ":grey_question: INSUFFICIENT_DATA: errors \u2014 why"),
    ],
)
def test_slack_message(state: str, text: str) -> None:
    body = notification(rule(), "OK", Evaluation(state, "why", ()), AT)
    assert slack_message(rule(), body) == {"text": text}


@pytest.mark.parametrize(
    ("fields", "stat", "dimensions"),
    [
        ({}, "Sum", {"FunctionName": "resize"}),
        ({"function": "*", "metric": "Duration", "statistic": "p99"}, "p99", {}),
    ],
)
def test_alarm_event(fields: dict[str, Any], stat: str, dimensions: dict[str, str]) -> None:
    alarm = rule(**fields, period=300)
    event = alarm_event(alarm, "OK", Evaluation("ALARM", "why", ()), AT)
    assert event == {
        "source": "aws.cloudwatch",
        "alarmArn": "arn:aws:cloudwatch:us-east-1:000000000000:alarm:errors",
        "accountId": "000000000000",
        "time": "2026-12-07T18:01:00.500+0000",
        "region": "us-east-1",
        "alarmData": {
            "alarmName": "errors",
            "state": {
                "value": "ALARM",
                "reason": "why",
                "timestamp": "2026-12-07T18:01:00.500+0000",
            },
            "previousState": {"value": "OK"},
            "configuration": {
                "description": "",
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": "mlambda",
                                "name": alarm.metric,
                                "dimensions": dimensions,
                            },
                            "period": 300,
                            "stat": stat,
                        },
                        "returnData": True,
                    }
                ],
            },
        },
    }
