"""What an alarm's state change sends (pure): the JSON CloudWatch publishes to SNS, Slack's
incoming-webhook form, and the event a function gets as an alarm's action."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mlambda.observe.alarm_rule import _PERCENTILE, AlarmRule
from mlambda.observe.alarms import Evaluation
from mlambda.runtime.context import ACCOUNT

NAMESPACE = "mlambda"
_EMOJI = {"ALARM": ":rotating_light:", "OK": ":white_check_mark:"}


def notification(
    rule: AlarmRule, old: str, new: Evaluation, at: float, region: str = "us-east-1"
) -> dict[str, Any]:
    """The JSON body CloudWatch publishes to SNS for a state change at ``at`` (epoch seconds)."""
    extended = bool(_PERCENTILE.fullmatch(rule.statistic))
    kind = "ExtendedStatistic" if extended else "Statistic"
    stat = rule.statistic if extended else re.sub(r"(?<=.)([A-Z])", r"_\1", rule.statistic).upper()
    dimensions = [] if rule.function == "*" else [{"name": "FunctionName", "value": rule.function}]
    return {
        "AlarmName": rule.name,
        "AlarmDescription": "",
        "NewStateValue": new.state,
        "OldStateValue": old,
        "NewStateReason": new.reason,
        "AWSAccountId": ACCOUNT,
        "AlarmArn": _arn(rule, region),
        "StateChangeTime": _iso(at),
        "Region": region,
        "Trigger": {
            "MetricName": rule.metric,
            "Namespace": NAMESPACE,
            "StatisticType": kind,
            kind: stat,
            "Dimensions": dimensions,
            "Period": rule.period_s,
            "EvaluationPeriods": rule.evaluation_periods,
            "DatapointsToAlarm": rule.m,
            "ComparisonOperator": rule.comparison,
            "Threshold": rule.threshold,
            "TreatMissingData": rule.treat_missing_data,
        },
    }


def alarm_event(
    rule: AlarmRule, old: str, new: Evaluation, at: float, region: str = "us-east-1"
) -> dict[str, Any]:
    """The event a Lambda function gets as a CloudWatch alarm's action (``notify_function``)."""
    when = _iso(at)
    dimensions = {} if rule.function == "*" else {"FunctionName": rule.function}
    metric = {"namespace": NAMESPACE, "name": rule.metric, "dimensions": dimensions}
    stat = {"metric": metric, "period": rule.period_s, "stat": rule.statistic}
    return {
        "source": "aws.cloudwatch",
        "alarmArn": _arn(rule, region),
        "accountId": ACCOUNT,
        "time": when,
        "region": region,
        "alarmData": {
            "alarmName": rule.name,
            "state": {"value": new.state, "reason": new.reason, "timestamp": when},
            "previousState": {"value": old},
            "configuration": {
                "description": "",
                "metrics": [{"id": "m1", "metricStat": stat, "returnData": True}],
            },
        },
    }


def slack_message(rule: AlarmRule, body: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message for a ``notification`` body: one line."""
    state = str(body["NewStateValue"])
    emoji = _EMOJI.get(state, ":grey_question:")
    return {"text": f"{emoji} {state}: {rule.name} \u2014 {body['NewStateReason']}"}


def _iso(at: float) -> str:
    when = datetime.fromtimestamp(at, UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}+0000"


def _arn(rule: AlarmRule, region: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{rule.name}"
