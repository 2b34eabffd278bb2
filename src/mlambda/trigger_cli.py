"""``mlambda triggers NAME`` and ``mlambda trigger add|show|enable|disable|delete``: the queues
and streams that feed a function (events/triggers/)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from mlambda.cli import print_table, when
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
}


def _row(trigger: dict[str, Any]) -> list[str]:
    status = trigger["status"]
    lag = status.get("lag")
    return [
        trigger["id"],
        trigger["type"],
        trigger["source"],
        status["state"],
        str(status.get("processed", 0)),
        str(status.get("failed", 0)),
        "-" if lag is None else str(lag),
        (status.get("lastError") or "-")[:60],
    ]


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
    if args.report_batch_item_failures:
        table["report_batch_item_failures"] = True
    if args.bisect_batch_on_function_error:
        table["bisect_batch_on_function_error"] = True
    if args.disabled:
        table["enabled"] = False
    trigger = client.add_trigger(args.name, table)
    print(trigger["id"])
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
        "--source", required=True, help="amqp://, redis://, nats://, mqtt:// or mlambda://"
    )
    add.add_argument("--type", choices=("queue", "stream"), default="queue", help="default: queue")
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
    parsers = [listing, add]
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
