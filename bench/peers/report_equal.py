"""The "Equal resources" subsection of the peers section: the same process count on both sides.

mlambda runs a model on up to max_instances instance processes (4 by default); a peer runs one
worker by default. Grouped by process count, the default and equal variants give two fair pairs:
mlambda with 4 instances (its default) against each peer with 4 workers, and mlambda with 1
instance against each peer with 1 worker (the peer's default). A reader sees what the
architecture gives apart from what more processes give.
"""

from __future__ import annotations

import argparse
from typing import Any

from report_tables import MODEL_NAMES, grid, load_cell, measured, ok, warm_cell

Column = tuple[str, str]  # (peer, variant)
WORDS = {1: "One process", 2: "Two processes", 3: "Three processes", 4: "Four processes"}


def section(
    outcomes: list[Any], peers: dict[str, dict[str, Any]], args: argparse.Namespace
) -> list[str]:
    """The subsection's lines; none unless both mlambda and the equal variant ran."""
    ran = "variants" in peers.get("mlambda", {})
    if not ran or not any(o.variant == "equal" for o in outcomes):
        return []
    by = {(o.peer, o.variant, o.model): o for o in outcomes}
    models = list(dict.fromkeys(o.model for o in outcomes))
    lines = [
        "",
        "### Equal resources: the same number of processes on both sides",
        "",
        "mlambda serves a model from up to `max_instances` instance processes (4 by default); "
        "each peer serves it from one worker process by default, so the tables above compare 4 "
        "processes with 1. Here the counts match: mlambda with its 4 instances against each peer "
        "with 4 workers (uvicorn `--workers 4`, BentoML `workers=4`, LitServe "
        "`workers_per_device=4`, MLServer `parallel_workers=4`, Ray Serve `num_replicas=4`), "
        "and mlambda with `max_instances = 1` against each peer with its 1 worker. Every row's "
        "settings are in the table at the top. A row added for this (mlambda with 1 instance, a "
        "peer with 4 workers) comes from one launch, measured once its process tree was idle "
        "(every worker had loaded the model); the other rows are those above. Same loads as "
        f"above: about {args.requests} requests at concurrency 1, {args.duration} s at "
        "concurrency 32.",
    ]
    tables = []
    counts = {run["workers"] for run in peers["mlambda"]["variants"].values()}
    for count in sorted(counts, reverse=True):
        columns = _columns(peers, count)
        if len(columns) > 1:
            tables += _group(by, models, peers, columns, count)
    tables += _scaling(by, models, peers)
    # Only the equal variant (no default rows to pair with): nothing to compare.
    return lines + tables if tables else []


def _columns(peers: dict, count: int) -> list[Column]:
    """mlambda's variant with ``count`` processes first, then each peer's."""
    columns = [
        (name, variant)
        for name, info in peers.items()
        for variant, run in info.get("variants", {}).items()
        if run["workers"] == count
    ]
    return sorted(columns, key=lambda column: column[0] != "mlambda")


def _label(peers: dict, column: Column) -> str:
    return str(peers[column[0]]["variants"][column[1]]["label"])


def _group(
    by: dict, models: list[str], peers: dict, columns: list[Column], count: int
) -> list[str]:
    """Throughput, warm latency and memory at one process count, then mlambda's ratios."""
    ours = columns[0]
    headers = [_label(peers, c) for c in columns]

    def table(title: str, cell: Any) -> list[str]:
        return grid(
            title, headers, models, lambda m: [measured(cell)(by.get((*c, m))) for c in columns]
        )

    lines = [
        "",
        f"#### {WORDS.get(count, f'{count} processes')} each: {_label(peers, ours)} against "
        f"each peer with {count} worker{'s' if count > 1 else ''}",
    ]
    lines += table("Throughput at concurrency 32, requests/s (p50 / p99 ms):", load_cell)
    lines += table("Warm latency at concurrency 1, ms: p50 / p90 / p99:", warm_cell)
    lines += table(
        "Peak memory of the serving process tree under the concurrency-32 load, MiB: PSS / RSS:",
        lambda o: f"{o.pss_load_mib:.0f} / {o.rss_load_mib:.0f}" if o.load else "-",
    )
    lines += [
        "",
        f"Ratios, {_label(peers, ours)} against each (> 1 means mlambda is better): warm p50 = "
        "peer's / mlambda's; throughput = mlambda's / peer's; memory = peer's peak under load / "
        "mlambda's.",
        "",
        "| peer | model | warm p50 | throughput | memory (PSS) | memory (RSS) |",
        "|---|---|---|---|---|---|",
    ]
    for column in columns[1:]:
        for model in models:
            mine, theirs = by.get((*ours, model)), by.get((*column, model))
            if not (ok(mine) and ok(theirs)):
                continue
            lines.append(
                f"| {_label(peers, column)} | {MODEL_NAMES[model]} | "
                f"{theirs.warm['p50'] / mine.warm['p50']:.2f}x | "
                f"{mine.load['rps'] / theirs.load['rps']:.2f}x | "
                f"{theirs.pss_load_mib / mine.pss_load_mib:.2f}x | "
                f"{theirs.rss_load_mib / mine.rss_load_mib:.2f}x |"
            )
    return lines


def _scaling(by: dict, models: list[str], peers: dict) -> list[str]:
    """What more processes give each platform: its variant with more against the one with fewer."""
    pairs = []  # (peer, variant with more processes, variant with fewer)
    for name, info in peers.items():
        runs = info.get("variants", {})
        if len(runs) == 2:
            more, fewer = sorted(runs, key=lambda v: runs[v]["workers"], reverse=True)
            pairs.append((name, more, fewer))
    if not pairs:
        return []

    def cell(name: str, more: str, fewer: str, model: str) -> str:
        big, small = by.get((name, more, model)), by.get((name, fewer, model))
        if not (ok(big) and ok(small)):
            return "-"
        rps, pss = big.load["rps"] / small.load["rps"], big.pss_load_mib / small.pss_load_mib
        return f"{rps:.2f}x ({pss:.2f}x)"

    headers = []
    for name, more, fewer in pairs:
        runs = peers[name]["variants"]
        headers.append(f"{peers[name]['name']} {runs[more]['workers']} / {runs[fewer]['workers']}")
    return [
        "",
        "#### More processes against fewer, each platform on its own",
        "",
        "Throughput at concurrency 32 with more processes / with fewer, and in brackets the same "
        "ratio of peak PSS under load:",
        *grid("", headers, models, lambda m: [cell(*pair, m) for pair in pairs]),
    ]
