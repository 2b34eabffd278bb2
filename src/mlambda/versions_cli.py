"""``mlambda publish``, ``versions``, ``aliases``, ``alias set|rm`` and ``rollback``: frozen
versions of a function and the aliases that route calls to them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from mlambda.cli import print_table, when
from mlambda.errors import InvalidRequest
from mlambda.settings import Settings

Runner = Callable[[argparse.Namespace, Settings, Any], int]


def cmd_publish(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    record = client.publish(args.name, args.description or "")
    if record["created"]:
        print(f"published {record['name']}:{record['version']} ({record['digest']})")
    else:
        print(
            f"{record['name']}:{record['version']} already holds $LATEST "
            f"({record['digest']}); nothing to publish"
        )
    return 0


def cmd_versions(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    records = client.versions(args.name)
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    aliases: dict[str, list[str]] = {}
    for alias in client.aliases(args.name):
        for version in (alias["version"], *alias["weights"]):
            aliases.setdefault(version, []).append(alias["name"])
    rows = [["VERSION", "DIGEST", "ALIASES", "CREATED", "DESCRIPTION"]]
    for r in records:
        rows.append(
            [
                r["version"],
                r["digest"][7:19],
                ",".join(aliases.get(r["version"], [])) or "-",
                when(r["createdAt"]),
                r["description"],
            ]
        )
    print_table(rows)
    return 0


def cmd_aliases(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    aliases = client.aliases(args.name)
    if args.json:
        print(json.dumps(aliases, indent=2))
        return 0
    if not aliases:
        print(f"No aliases of {args.name}. Point one with: mlambda alias set {args.name} NAME N")
        return 0
    rows = [["ALIAS", "ROUTES TO", "PREVIOUS", "UPDATED", "DESCRIPTION"]]
    for a in aliases:
        previous = a["previous"]
        rows.append(
            [
                a["name"],
                routes(a),
                routes(previous) if previous else "-",
                when(a["updatedAt"]),
                a["description"],
            ]
        )
    print_table(rows)
    return 0


def routes(routing: dict[str, Any]) -> str:
    """``2`` or ``2 (90%) + 3 (10%)``."""
    weights: dict[str, float] = routing.get("weights") or {}
    if not weights:
        return str(routing["version"])
    main = 1.0 - sum(weights.values())
    extra = "".join(f" + {v} ({w:.0%})" for v, w in weights.items())
    return f"{routing['version']} ({main:.0%}){extra}"


def parse_weight(text: str) -> tuple[str, float]:
    """``--weight 3=0.1`` -> ("3", 0.1)."""
    version, sep, share = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return version, float(share)
    except ValueError:
        raise InvalidRequest(f"--weight takes VERSION=SHARE (e.g. 3=0.1), got {text!r}") from None


def cmd_alias(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    if args.action == "rm":
        if args.version is not None:
            raise InvalidRequest("usage: mlambda alias rm NAME ALIAS")
        client.delete_alias(args.name, args.alias)
        print(f"removed alias {args.name}:{args.alias}")
        return 0
    if args.version is None:
        raise InvalidRequest("usage: mlambda alias set NAME ALIAS VERSION [--weight V=SHARE]")
    weights = dict(parse_weight(w) for w in args.weight or [])
    alias = client.set_alias(args.name, args.alias, args.version, weights, args.description)
    print(f"{args.name}:{args.alias} -> {routes(alias)}")
    return 0


def cmd_rollback(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    alias = client.rollback(args.name, args.alias)
    print(f"{args.name}:{args.alias} -> {routes(alias)} (rolled back)")
    return 0


def add_commands(
    commands: Any, with_client: Callable[[Runner], Callable[[argparse.Namespace, Settings], int]]
) -> list[argparse.ArgumentParser]:
    """Add the versions and aliases commands; returns the parsers that take client options."""
    publish = commands.add_parser(
        "publish", help="freeze a function's $LATEST as its next numbered version"
    )
    publish.add_argument("name", metavar="NAME")
    publish.add_argument("--description", help="a note kept with the version")
    publish.set_defaults(run=with_client(cmd_publish))

    versions = commands.add_parser(
        "versions", help="list a function's versions ($LATEST first) and the aliases on them"
    )
    versions.add_argument("name", metavar="NAME")
    versions.add_argument("--json", action="store_true", help="print JSON")
    versions.set_defaults(run=with_client(cmd_versions))

    aliases = commands.add_parser("aliases", help="list a function's aliases and their routing")
    aliases.add_argument("name", metavar="NAME")
    aliases.add_argument("--json", action="store_true", help="print JSON")
    aliases.set_defaults(run=with_client(cmd_aliases))

    alias = commands.add_parser(
        "alias",
        help="point an alias at a version, optionally sending a share of calls to another "
        "(`alias set NAME live 2 --weight 3=0.1`), or remove it (`alias rm NAME live`)",
    )
    alias.add_argument("action", choices=("set", "rm"))
    alias.add_argument("name", metavar="NAME")
    alias.add_argument("alias", metavar="ALIAS")
    alias.add_argument("version", metavar="VERSION", nargs="?", help="$LATEST or a number")
    alias.add_argument(
        "--weight",
        action="append",
        metavar="VERSION=SHARE",
        help="send this share of calls (0 to <1) to another version (once at most)",
    )
    alias.add_argument("--description", help="a note kept with the alias")
    alias.set_defaults(run=with_client(cmd_alias))

    rollback = commands.add_parser(
        "rollback", help="point an alias back to where it routed before its last change"
    )
    rollback.add_argument("name", metavar="NAME")
    rollback.add_argument("alias", metavar="ALIAS")
    rollback.set_defaults(run=with_client(cmd_rollback))
    return [publish, versions, aliases, alias, rollback]
