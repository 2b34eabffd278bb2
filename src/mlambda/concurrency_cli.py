"""``mlambda concurrency NAME``: a function's reserved concurrency (calls at once, kept for it)
and provisioned concurrency (instances kept started for a version or an alias)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from mlambda.cli import print_table
from mlambda.errors import InvalidRequest
from mlambda.settings import Settings

Runner = Callable[[argparse.Namespace, Settings, Any], int]
OFF = ("none", "off")


def _count(text: str | None, flag: str) -> int | None:
    if text is None or text.lower() in OFF:
        return None
    if not text.isdigit():
        raise InvalidRequest(f"{flag} takes a number, or none to remove it; got {text!r}")
    return int(text)


def cmd_concurrency(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    if args.reserved is not None:
        client.set_reserved(args.name, _count(args.reserved, "--reserved"))
    if args.provisioned is not None:
        if not args.qualifier:
            raise InvalidRequest("--provisioned needs --qualifier VERSION|ALIAS")
        client.set_provisioned(args.name, args.qualifier, _count(args.provisioned, "--provisioned"))
    elif args.qualifier:
        raise InvalidRequest("--qualifier goes with --provisioned N")
    state = client.concurrency(args.name)
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    reserved = state["reserved"]
    print(
        f"{args.name}: reserved {'none' if reserved is None else reserved} "
        f"(platform limit {state['limit']}, {state['unreserved']} unreserved)"
    )
    if state["provisioned"]:
        rows = [["QUALIFIER", "VERSION", "REQUESTED", "AVAILABLE", "STATUS"]]
        for p in state["provisioned"]:
            rows.append(
                [
                    p["qualifier"],
                    p.get("version", "-"),
                    str(p["requested"]),
                    str(p["available"]),
                    p["status"],
                ]
            )
        print_table(rows)
    return 0


def add_commands(
    commands: Any, with_client: Callable[[Runner], Callable[[argparse.Namespace, Settings], int]]
) -> list[argparse.ArgumentParser]:
    concurrency = commands.add_parser(
        "concurrency",
        help="show or set a function's reserved concurrency (--reserved N) and provisioned "
        "concurrency of a version or alias (--provisioned N --qualifier Q); none removes",
    )
    concurrency.add_argument("name", metavar="NAME")
    concurrency.add_argument(
        "--reserved", metavar="N", help="at most N calls at once, kept for it (none: remove)"
    )
    concurrency.add_argument(
        "--provisioned",
        metavar="N",
        help="keep instances started for N calls at once of --qualifier (none: remove)",
    )
    concurrency.add_argument("--qualifier", metavar="VERSION|ALIAS")
    concurrency.add_argument("--json", action="store_true", help="print JSON")
    concurrency.set_defaults(run=with_client(cmd_concurrency))
    return [concurrency]
