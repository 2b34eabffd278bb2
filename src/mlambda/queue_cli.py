"""``mlambda queues`` and ``mlambda queue send|receive|delete``: the platform's own queues
(``mlambda://NAME``), where a destination can send an event's outcome."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from mlambda.cli import print_table, when
from mlambda.settings import Settings

Runner = Callable[[argparse.Namespace, Settings, Any], int]


def cmd_queues(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    queues = client.queues()
    if args.json:
        print(json.dumps(queues, indent=2))
    elif not queues:
        print("No queue has messages")
    else:
        rows = [["QUEUE", "MESSAGES", "OLDEST"]]
        rows += [[q["name"], str(q["messages"]), when(q["oldestSentAt"])] for q in queues]
        print_table(rows)
    return 0


def cmd_send(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    print(client.send_message(args.queue, args.data.encode())["messageId"])
    return 0


def cmd_receive(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    """Print the messages received (one JSON object a line); with --delete, delete each once
    printed: a message is then gone only after it was shown."""
    messages = client.receive_messages(args.queue, args.max, args.visibility)
    for message in messages:
        print(json.dumps(message))
        if args.delete:
            client.delete_message(args.queue, message["receiptHandle"])
    if not messages:
        print(f"No message in {args.queue} to receive")
    return 0


def cmd_delete(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    client.delete_message(args.queue, args.receipt)
    return 0


def add_commands(
    commands: Any, with_client: Callable[[Runner], Callable[[argparse.Namespace, Settings], int]]
) -> list[argparse.ArgumentParser]:
    """Add ``queues`` and ``queue``; returns the parsers that take client options."""
    listing = commands.add_parser("queues", help="the platform's queues that hold messages")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=with_client(cmd_queues))
    queue = commands.add_parser("queue", help="send, receive or delete a platform queue's messages")
    actions = queue.add_subparsers(title="actions", metavar="ACTION", required=True)
    send = actions.add_parser("send", help="send a message; prints its id")
    send.add_argument("queue")
    send.add_argument("--data", "-d", default="{}", help="the message body (default {})")
    send.set_defaults(run=with_client(cmd_send))
    receive = actions.add_parser("receive", help="receive messages (one JSON object a line)")
    receive.add_argument("queue")
    receive.add_argument("--max", type=int, default=1, help="at most this many, 1-10 (default 1)")
    receive.add_argument(
        "--visibility",
        type=int,
        default=30,
        metavar="S",
        help="hide them from other receivers this long, in seconds (default 30)",
    )
    receive.add_argument("--delete", action="store_true", help="delete each once printed")
    receive.set_defaults(run=with_client(cmd_receive))
    delete = actions.add_parser("delete", help="delete a received message by its receipt handle")
    delete.add_argument("queue")
    delete.add_argument("receipt")
    delete.set_defaults(run=with_client(cmd_delete))
    return [listing, send, receive, delete]
