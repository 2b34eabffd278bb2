"""``mlambda triggers NAME`` and ``mlambda trigger add|show|enable|disable|delete``: the queues,
streams, buckets, folders, schedules and rules that feed a function (events/triggers/); and
``mlambda event put``, an event on the platform's bus."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from mlambda.cli import print_table, when
from mlambda.events.triggers.config import CATCH_UP, OBJECT_MODES, TYPES
from mlambda.settings import Settings

Runner = Callable[[argparse.Namespace, Settings, Any], int]
# CLI option -> the trigger setting it gives (only those given are sent).
OPTIONS = {
    "type": "type",
    "source": "source",
    "batch_size": "batch_size",
    "window": "max_batching_window_s",
    "max_receive_count": "max_receive_count",
    "dead_letter": "dead_letter",
    "max_concurrency": "max_concurrency",
    "starting_position": "starting_position",
    "parallelization_factor": "parallelization_factor",
    "maximum_retry_attempts": "maximum_retry_attempts",
    "maximum_record_age": "maximum_record_age_s",
    "on_failure": "on_failure",
    "suffix": "suffix",
    "mode": "mode",
    "endpoint_url": "endpoint_url",
    "region": "region",
    "poll_interval": "poll_interval_s",
    "schedule": "schedule",
    "timezone": "timezone",
    "catch_up": "catch_up",
}
JSON_OPTIONS = {"input": "input", "pattern": "pattern"}


def _row(trigger: dict[str, Any]) -> list[str]:
    status = trigger["status"]
    lag = status.get("lag")
    return [
        trigger["id"],
        trigger["type"],
        _what(trigger),
        status["state"],
        str(status.get("processed", 0)),
        str(status.get("failed", 0)),
        "-" if lag is None else str(lag),
        (status.get("lastError") or "-")[:60],
    ]


def _what(trigger: dict[str, Any]) -> str:
    """What feeds it: the source, the schedule, or the rule's pattern."""
    if "source" in trigger:
        return str(trigger["source"])
    if "schedule" in trigger:
        zone = trigger.get("timezone", "UTC")
        return trigger["schedule"] + ("" if zone == "UTC" else f" {zone}")
    return json.dumps(trigger.get("pattern"), separators=(",", ":"))[:60]


def cmd_triggers(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    triggers = client.triggers(args.name)
    if args.json:
        print(json.dumps(triggers, indent=2))
    elif not triggers:
        print(f"{args.name} has no trigger: mlambda trigger add {args.name} --source URL")
    else:
        header = ["ID", "TYPE", "SOURCE", "STATE", "PROCESSED", "FAILED", "LAG", "LAST ERROR"]
        print_table([header, *(_row(t) for t in triggers)])
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    table = {
        setting: getattr(args, option)
        for option, setting in OPTIONS.items()
        if getattr(args, option) is not None
    }
    table.setdefault("type", _type_of(args))
    for option, setting in JSON_OPTIONS.items():
        text = getattr(args, option)
        if text is not None:
            table[setting] = _json(text, f"--{option}")
    if args.events is not None:
        table["events"] = [e.strip() for e in args.events.split(",") if e.strip()]
    if args.report_batch_item_failures:
        table["report_batch_item_failures"] = True
    if args.bisect_batch_on_function_error:
        table["bisect_batch_on_function_error"] = True
    if args.disabled:
        table["enabled"] = False
    trigger = client.add_trigger(args.name, table)
    print(trigger["id"])
    return 0


def _type_of(args: argparse.Namespace) -> str:
    if args.schedule is not None:
        return "schedule"
    if args.pattern is not None:
        return "rule"
    return "object" if (args.source or "").startswith(("s3://", "file://")) else "queue"


def _json(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"mlambda: {option} must be JSON: {exc}") from None


def cmd_put(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    entry = {"Source": args.source, "DetailType": args.detail_type, "Detail": args.detail}
    _json(args.detail, "--detail")
    (answer,) = client.put_events([entry])["Entries"]
    if "ErrorCode" in answer:
        print(f"mlambda: {answer['ErrorCode']}: {answer['ErrorMessage']}", file=sys.stderr)
        return 1
    print(answer["EventId"])
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    trigger = client.trigger(args.id)
    if args.json:
        print(json.dumps(trigger, indent=2))
        return 0
    status = trigger.pop("status")
    for key, value in trigger.items():
        shown = when(value) if key in ("createdAt", "updatedAt") else value
        print(f"{key}: {shown}")
    for key, value in status.items():
        shown = when(value) if key.endswith("At") else value
        print(f"status.{key}: {'-' if shown is None else shown}")
    return 0


def cmd_enable(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    client.set_trigger_enabled(args.id, True)
    print(f"trigger {args.id} enabled")
    return 0


def cmd_disable(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    client.set_trigger_enabled(args.id, False)
    print(f"trigger {args.id} disabled: its messages wait at the broker")
    return 0


def cmd_delete(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    client.delete_trigger(args.id)
    print(f"trigger {args.id} deleted")
    return 0


def _add_options(add: argparse.ArgumentParser) -> None:
    add.add_argument("name", help="the function it feeds")
    add.add_argument(
        "--source",
        help="amqp://, redis://, nats://, mqtt://, mlambda:// (queue, stream); s3://, file:// "
        "(object)",
    )
    add.add_argument(
        "--type", choices=TYPES, help="default: from --schedule, --pattern or the source's scheme"
    )
    add.add_argument("--batch-size", type=int, help="messages per invocation, 1-10000")
    add.add_argument("--window", type=float, metavar="S", help="max_batching_window_s")
    add.add_argument(
        "--report-batch-item-failures",
        action="store_true",
        help="retry only the items the handler names in batchItemFailures",
    )
    add.add_argument("--max-receive-count", type=int, help="deliveries before the dead letter")
    add.add_argument("--dead-letter", metavar="URL", help="mlambda://QUEUE")
    add.add_argument("--max-concurrency", type=int, help="batches at once (instances kept busy)")
    add.add_argument(
        "--starting-position", choices=("latest", "trim_horizon", "at_timestamp"), help="stream"
    )
    add.add_argument("--parallelization-factor", type=int, help="stream: 1-10")
    add.add_argument("--bisect-batch-on-function-error", action="store_true", help="stream")
    add.add_argument("--maximum-retry-attempts", type=int, help="stream: -1 (no limit) or more")
    add.add_argument("--maximum-record-age", type=int, metavar="S", help="stream: -1 or 60-604800")
    add.add_argument("--on-failure", metavar="URL", help="stream: mlambda://QUEUE or function:NAME")
    add.add_argument("--suffix", help="object: only keys that end so")
    add.add_argument("--events", metavar="LIST", help="object: created, removed or both (a,b)")
    add.add_argument("--mode", choices=OBJECT_MODES, help="object: watch (default) or notify")
    add.add_argument("--endpoint-url", metavar="URL", help="object: an S3-compatible store")
    add.add_argument("--region", help="object: the store's region")
    add.add_argument("--poll-interval", type=float, metavar="S", help="object: between listings")
    add.add_argument("--schedule", help="schedule: rate(5 minutes) or cron(0 2 * * ? *)")
    add.add_argument("--timezone", help="schedule: an IANA zone such as Europe/Berlin")
    add.add_argument("--input", metavar="JSON", help="schedule: the payload, not the event")
    add.add_argument("--catch-up", choices=CATCH_UP, help="schedule: none (default) or latest")
    add.add_argument("--pattern", metavar="JSON", help="rule: an EventBridge event pattern")
    add.add_argument("--disabled", action="store_true", help="add it disabled")


def add_commands(
    commands: Any, with_client: Callable[[Runner], Callable[[argparse.Namespace, Settings], int]]
) -> list[argparse.ArgumentParser]:
    """Add ``triggers`` and ``trigger``; returns the parsers that take client options."""
    listing = commands.add_parser("triggers", help="a function's triggers, with their state")
    listing.add_argument("name")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=with_client(cmd_triggers))
    trigger = commands.add_parser("trigger", help="add, show, enable, disable or delete a trigger")
    actions = trigger.add_subparsers(title="actions", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="feed a function from a queue or stream; prints its id")
    _add_options(add)
    add.set_defaults(run=with_client(cmd_add))
    event = commands.add_parser("event", help="put an event on the platform's event bus")
    event_actions = event.add_subparsers(title="actions", metavar="ACTION", required=True)
    put = event_actions.add_parser("put", help="an event for the rule triggers; prints its id")
    put.add_argument("--source", required=True, help="who sends it, such as shop.orders")
    put.add_argument("--detail-type", required=True, help="what it is, such as Order Placed")
    put.add_argument("--detail", default="{}", metavar="JSON", help="a JSON object")
    put.set_defaults(run=with_client(cmd_put))
    parsers = [listing, add, put]
    for action, run, text in (
        ("show", cmd_show, "a trigger's settings and state"),
        ("enable", cmd_enable, "start consuming again"),
        ("disable", cmd_disable, "stop consuming (messages wait at the broker)"),
        ("delete", cmd_delete, "delete a trigger made with trigger add"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("id")
        if action == "show":
            sub.add_argument("--json", action="store_true", help="print JSON")
        sub.set_defaults(run=with_client(run))
        parsers.append(sub)
    return parsers
