"""``mlambda cost [--since 7d] [--by function|version|day]``: what functions used, priced as
Lambda bills it and at this machine's own cost (GET /v1/cost)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from mlambda.cli import print_table
from mlambda.settings import Settings

Runner = Callable[[argparse.Namespace, Settings, Any], int]


def money(value: float | None) -> str:
    """Pure: dollars, with the digits a small figure needs (a millionth of a cent shows)."""
    if value is None:
        return "-"
    if value == 0 or value >= 0.01:
        return f"${value:,.2f}"
    return f"${value:.8f}".rstrip("0")


def cmd_cost(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    report = client.cost(args.since, args.by)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    header = [args.by.upper(), "INVOCATIONS", "ERRORS", "PREDICTIONS", "GB-SECONDS",
              "CPU-SECONDS", "ON LAMBDA", "PER PREDICTION", "HERE", "PER PREDICTION"]  # fmt: skip
    rows = [
        [row["name"], str(row["invocations"]), str(row["errors"]), str(row["predictions"]),
         f"{row['gbSeconds']:.3f}", f"{row['cpuSeconds']:.3f}", money(row["lambdaCost"]),
         money(row["lambdaCostPerPrediction"]), money(row["hereCost"]),
         money(row["hereCostPerPrediction"])]
        for row in [*report["rows"], report["total"]]
    ]  # fmt: skip
    print(f"since {report['from']} (UTC), by {args.by}")
    print_table([header, *rows])
    return 0


def add_commands(
    commands: Any, with_client: Callable[[Runner], Callable[[argparse.Namespace, Settings], int]]
) -> list[argparse.ArgumentParser]:
    cost = commands.add_parser("cost", help="what functions used, priced on Lambda and here")
    cost.add_argument("--since", default="7d", help="how far back: 30m, 24h, 7d (default 7d)")
    cost.add_argument("--by", choices=("function", "version", "day"), default="function")
    cost.add_argument("--json", action="store_true", help="print JSON")
    cost.set_defaults(run=with_client(cmd_cost))
    return [cost]
