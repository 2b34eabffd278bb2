"""The ``mlambda keys`` and ``mlambda audit`` commands (the admin scope's)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from mlambda.cli import print_table, when
from mlambda.errors import InvalidRequest
from mlambda.settings import Settings

DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s`` or plain seconds -> seconds."""
    match = DURATION.fullmatch(text.strip())
    if not match:
        raise InvalidRequest(f"duration must be like 30d, 12h, 90m or 45s, got {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def cmd_keys_create(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    request: dict[str, Any] = {"name": args.name, "scopes": args.scope}
    if args.expires:
        request["expires_s"] = parse_duration(args.expires)
    if args.rate_limit is not None:
        request["rate_limit"] = args.rate_limit
    if args.burst is not None:
        request["burst"] = args.burst
    key = client.create_key(request)
    if args.json:
        print(json.dumps(key, indent=2))
        return 0
    print(f"created key {key['id']} ({key['name']}): {', '.join(key['scopes'])}")
    print(f"expires: {when(key['expiresAt']) if key['expiresAt'] else 'never'}")
    print("This is the only time the secret is shown; store it now.")
    print(f"  token (Authorization: Bearer):  {key['token']}")
    print(f"  AWS access key id:              {key['id']}")
    print(f"  AWS secret access key:          {key['secretAccessKey']}")
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    keys = client.list_keys()
    if args.json:
        print(json.dumps(keys, indent=2))
        return 0
    rows = [("ID", "NAME", "SCOPES", "STATE", "CREATED", "EXPIRES", "RATE")]
    for key in keys:
        rate = f"{key['rateLimit']:g}/s burst {key['burst']:g}" if key["rateLimit"] else "-"
        rows.append(
            (
                key["id"],
                key["name"],
                ",".join(key["scopes"]),
                key["state"],
                when(key["createdAt"]),
                when(key["expiresAt"]),
                rate,
            )
        )
    print_table(rows)
    return 0


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    key = client.revoke_key(args.id)
    print(f"revoked {key['id']} ({key['name']})")
    return 0


def cmd_keys_rotate_master(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    summary = client.rotate_master_key()
    counts = ", ".join(f"{n} {kind}" for kind, n in summary["rewrapped"].items())
    print(
        f"master key rotated ({summary['source']}): {summary['previous']} -> "
        f"{summary['primary']}; re-wrapped {counts} in {summary['seconds']} s"
    )
    return 0


def cmd_audit(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    if args.verify:
        result = client.verify_audit()
        if result["ok"]:
            print(f"audit log verified: {result['checked']} entries, chain intact")
            return 0
        print(f"audit log FAILED verification: {result['reason']}", file=sys.stderr)
        return 1
    params = {"limit": str(args.limit)}
    if args.since:
        params["since"] = str(time.time() - parse_duration(args.since))
    if args.action:
        params["action"] = args.action
    entries = client.audit(**params)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    rows = [("SEQ", "TIME", "KEY", "SOURCE", "ACTION", "TARGET", "OUTCOME")]
    for e in entries:
        rows.append(
            (
                str(e["seq"]),
                when(e["at"]),
                e["keyId"] or "-",
                e["source"] or "-",
                e["action"],
                e["target"] or "-",
                e["outcome"],
            )
        )
    print_table(rows)
    return 0


Runner = Callable[[argparse.Namespace, Settings, Any], int]


def add_commands(
    commands: Any, with_client: Callable[[Runner], Callable[[argparse.Namespace, Settings], int]]
) -> list[argparse.ArgumentParser]:
    """Add ``keys`` and ``audit`` to the parser; returns the parsers that take client options."""
    keys = commands.add_parser("keys", help="API keys with scopes (needs the admin key)")
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a key; prints its secret once")
    create.add_argument("name")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        help="admin, read, deploy[:PATTERN], invoke[:PATTERN] (a glob like fraud*) or events; "
        "repeatable",
    )
    create.add_argument("--expires", metavar="DURATION", help="30d, 12h, 90m... (default never)")
    create.add_argument("--rate-limit", type=float, help="requests per second for this key")
    create.add_argument("--burst", type=float, help="requests above the rate a full bucket allows")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(run=with_client(cmd_keys_create))
    listing = sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=with_client(cmd_keys_list))
    revoke = sub.add_parser("revoke", help="revoke a key: it is refused from now on")
    revoke.add_argument("id")
    revoke.set_defaults(run=with_client(cmd_keys_revoke))
    rotate = sub.add_parser(
        "rotate-master", help="re-wrap every data key under a new master key (no downtime)"
    )
    rotate.set_defaults(run=with_client(cmd_keys_rotate_master))

    audit = commands.add_parser("audit", help="the audit log of control-plane calls (admin)")
    audit.add_argument("--since", metavar="DURATION", help="only the last 1h, 2d...")
    audit.add_argument("--action", help="only this action (function.deploy, auth.refused...)")
    audit.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    audit.add_argument(
        "--verify",
        action="store_true",
        help="check the hash chain; exits 1 naming the first entry that was edited or deleted",
    )
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.set_defaults(run=with_client(cmd_audit))
    return [create, listing, revoke, rotate, audit]
