"""``mlambda alarms [put|show|delete]``: alarms on a function's metrics (GET/PUT/DELETE
/v1/alarms), and ``mlambda metrics NAME``: a metric's datapoints, as alarms see them."""

from __future__ import annotations

import argparse
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlambda.cli import print_table, when
from mlambda.settings import Settings

Runner = Callable[[argparse.Namespace, Settings, Any], int]
SIGNS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}
# Flags of `alarms put` and the rule fields they set.
RULE_FLAGS = ("function", "metric", "statistic", "comparison", "threshold", "period",
              "evaluation_periods", "datapoints_to_alarm", "treat_missing_data", "webhook_format",
              "notify_function")  # fmt: skip


def condition(alarm: dict[str, Any]) -> str:
    """Pure: ``p99(Duration) > 250 for 2 of 3 x 60s``."""
    sign = SIGNS.get(alarm["comparison"], alarm["comparison"])
    m = alarm.get("datapoints_to_alarm") or alarm["evaluation_periods"]
    return (
        f"{alarm['statistic']}({alarm['metric']}) {sign} {alarm['threshold']:g} "
        f"for {m} of {alarm['evaluation_periods']} x {alarm['period']}s"
    )


def rule_of(args: argparse.Namespace) -> dict[str, Any]:
    """The rule a ``put`` gives: a file (JSON, or TOML with one [alarm] table), then flags."""
    rule: dict[str, Any] = {}
    if args.file:
        text = Path(args.file).read_text()
        if args.file.endswith(".toml"):
            rule = tomllib.loads(text).get("alarm", {})
        else:
            rule = json.loads(text)
    for field in RULE_FLAGS:
        value = getattr(args, field)
        if value is not None:
            rule[field] = value
    if args.webhook:
        rule["webhooks"] = args.webhook
    if args.notify_on:
        rule["notify_on"] = args.notify_on.split(",")
    return rule


def cmd_alarms(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    alarms = client.alarms()
    if args.json:
        print(json.dumps(alarms, indent=2))
        return 0
    if not alarms:
        print("no alarm yet: mlambda alarms put NAME --function F --metric Errors ...")
        return 0
    header = ["NAME", "FUNCTION", "CONDITION", "STATE", "SINCE"]
    rows = [[a["name"], a["function"], condition(a), a["state"], when(a["stateUpdatedAt"])]
            for a in alarms]  # fmt: skip
    print_table([header, *rows])
    return 0


def cmd_put(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    alarm = client.put_alarm(args.name, rule_of(args))
    print(f"alarm {alarm['name']}: {condition(alarm)} ({alarm['state']})")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    alarm = client.alarm(args.name)
    if args.json:
        print(json.dumps(alarm, indent=2))
        return 0
    print(f"{alarm['name']}: {condition(alarm)} on {alarm['function']}")
    print(f"state: {alarm['state']} since {when(alarm['stateUpdatedAt'])}")
    print(f"reason: {alarm['stateReason']}")
    for change in alarm["history"]:
        print(f"  {when(change['at'])}  {change['oldState']} -> {change['newState']}")
    return 0


def cmd_delete(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    client.delete_alarm(args.name)
    print(f"alarm {args.name} deleted")
    return 0


def cmd_metrics(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    series = client.metrics(args.name, args.metric, args.statistic, args.period, args.since)
    if args.json:
        print(json.dumps(series, indent=2))
        return 0
    rows = [[when(p["timestamp"]), "-" if p["value"] is None else f"{p['value']:g}"]
            for p in series["datapoints"]]  # fmt: skip
    print(f"{args.statistic}({args.metric}) of {args.name}, per {args.period}s")
    print_table([["PERIOD", "VALUE"], *rows])
    return 0


def add_commands(
    commands: Any, with_client: Callable[[Runner], Callable[[argparse.Namespace, Settings], int]]
) -> list[argparse.ArgumentParser]:
    """Add ``alarms`` (and its actions) and ``metrics``; returns the parsers that take client
    options."""
    alarms = commands.add_parser("alarms", help="alarms on function metrics, and their state")
    alarms.add_argument("--json", action="store_true", help="print JSON")
    alarms.set_defaults(run=with_client(cmd_alarms))
    actions = alarms.add_subparsers(dest="action", metavar="{put,show,delete}")
    put = actions.add_parser("put", help="create or replace an alarm")
    put.add_argument("name")
    put.add_argument("--file", help="the rule as JSON, or TOML with an [alarm] table")
    put.add_argument("--function", help="the function watched (* for all)")
    put.add_argument("--metric", help="Invocations, Errors, ErrorRate, Throttles, Duration...")
    put.add_argument("--statistic", help="Sum, Average, Minimum, Maximum, SampleCount, p99...")
    put.add_argument("--comparison", choices=tuple(SIGNS))
    put.add_argument("--threshold", type=float)
    put.add_argument("--period", type=int, help="seconds per datapoint (default 60)")
    put.add_argument("--evaluation-periods", type=int, help="datapoints looked at (default 1)")
    put.add_argument("--datapoints-to-alarm", type=int, help="of them, breaching to alarm")
    put.add_argument("--treat-missing-data", choices=("missing", "ignore", "breaching",
                                                      "notBreaching"))  # fmt: skip
    put.add_argument("--webhook", action="append", metavar="URL", help="notify (repeatable)")
    put.add_argument("--webhook-format", choices=("json", "slack"))
    put.add_argument("--notify-function", metavar="FUNCTION", help="invoke it on each change")
    put.add_argument("--notify-on", metavar="STATES", help="e.g. ALARM,OK (the default)")
    put.set_defaults(run=with_client(cmd_put))
    show = actions.add_parser("show", help="an alarm's state and its last changes")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=with_client(cmd_show))
    delete = actions.add_parser("delete", help="delete an alarm")
    delete.add_argument("name")
    delete.set_defaults(run=with_client(cmd_delete))
    metrics = commands.add_parser("metrics", help="a function's metric, period by period")
    metrics.add_argument("name", help="a function, or * for all of them")
    metrics.add_argument("--metric", default="Invocations")
    metrics.add_argument("--statistic", default="Sum")
    metrics.add_argument("--period", type=int, default=60, help="seconds (default 60)")
    metrics.add_argument("--since", default="1h", help="how far back: 10m, 1h, 1d (default 1h)")
    metrics.add_argument("--json", action="store_true", help="print JSON")
    metrics.set_defaults(run=with_client(cmd_metrics))
    return [alarms, put, show, delete, metrics]
