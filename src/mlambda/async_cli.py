"""``mlambda invocations``: asynchronous invocations, their state, attempts and results."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from mlambda.cli import print_table, when
from mlambda.errors import InvalidRequest
from mlambda.events.queue import STATES
from mlambda.settings import Settings

ALL = "*"
Runner = Callable[[argparse.Namespace, Settings, Any], int]


def cmd_invocations(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    words = args.words
    if words[:1] == ["show"]:
        if len(words) != 2:
            raise InvalidRequest("usage: mlambda invocations show ID")
        print(json.dumps(client.invocation(words[1]), indent=2))
        return 0
    if words[:1] == ["replay"]:
        return _replay(args, client)
    if len(words) > 1:
        raise InvalidRequest("usage: mlambda invocations [NAME] [--state STATE]")
    name = words[0] if words else None
    records = client.invocations(name, state=args.state, limit=args.limit)
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    if not records:
        what = f" of {name}" if name else ""
        print(f"No asynchronous invocations{what}" + (f" {args.state}" if args.state else ""))
        return 0
    rows = [["ID", "FUNCTION", "STATE", "ATTEMPTS", "ENQUEUED", "FINISHED", "ERROR"]]
    for r in records:
        error = (r.get("error") or {}).get("errorType", "")
        rows.append(
            [
                r["invocationId"],
                r["function"],
                r["state"],
                f"{r['attempts']}/{r['maxAttempts']}",
                when(r["enqueuedAt"]),
                when(r["finishedAt"]),
                error,
            ]
        )
    print_table(rows)
    return 0


def _replay(args: argparse.Namespace, client: Any) -> int:
    """``replay ID``, or ``replay --all-failed [NAME]``: each as a new invocation."""
    words = args.words[1:]
    if args.all_failed is not None:
        if words:
            raise InvalidRequest("usage: mlambda invocations replay --all-failed [NAME]")
        name = None if args.all_failed == ALL else args.all_failed
        targets = [
            r
            for state in ("failed", "expired")
            for r in client.invocations(name, state=state, limit=1000)
        ]
    else:
        if len(words) != 1:
            raise InvalidRequest("usage: mlambda invocations replay ID | --all-failed [NAME]")
        targets = [client.invocation(words[0])]
    for record in targets:
        again = client.replay(record["function"], record["invocationId"])
        print(f"{record['invocationId']} -> {again['invocation_id']}")
    if not targets:
        print("Nothing to replay")
    return 0


def add_commands(
    commands: Any, with_client: Callable[[Runner], Callable[[argparse.Namespace, Settings], int]]
) -> list[argparse.ArgumentParser]:
    """Add ``invocations``; returns the parsers that take client options."""
    listing = commands.add_parser(
        "invocations",
        help="asynchronous invocations (newest first); `invocations show ID` for one",
    )
    listing.add_argument(
        "words",
        nargs="*",
        metavar="NAME | show ID | replay ID",
        help="a function's only; show one by id; replay one (or --all-failed) as a new one",
    )
    listing.add_argument("--state", choices=STATES, help="only invocations in this state")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument(
        "--all-failed",
        nargs="?",
        const=ALL,
        metavar="NAME",
        help="with replay: every failed or expired invocation (of NAME, if given)",
    )
    listing.set_defaults(run=with_client(cmd_invocations))
    return [listing]
