"""The peer benchmark's tables (the "peers" section of bench/RESULTS.md) and charts (PNG).

The default variant's tables and charts are here; the equal-resources subsection is in
report_equal.py, and the helpers both use in report_tables.py.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import report_equal
from report_tables import MODEL_NAMES, grid, load_cell, measured, ok, one_line, warm_cell
from results import machine, write_section

CHARTS = Path(__file__).resolve().parent / "charts"


def write(
    outcomes: list[Any], peers: dict[str, dict[str, Any]], args: argparse.Namespace, minutes: float
) -> None:
    # The default variant (each platform as it comes) fills the tables and charts below.
    names = [n for n in peers if "default" in peers[n].get("variants", {})]
    models = list(dict.fromkeys(o.model for o in outcomes))
    by = {(o.peer, o.model): o for o in outcomes if o.variant == "default"}
    charts = draw(by, names, models, peers) if names else []
    lines = [
        "## mlambda and its peers, side by side",
        "",
        f"Command: `make bench-peers` (`.venv/bin/python bench/peers/run.py`), one run of "
        f"{minutes:.0f} minutes. Machine: {machine()}. The load generator (`wrk`, one thread, "
        "127.0.0.1) shares the machine with the server, as every peer does.",
        "",
        "Each peer runs in its own virtual environment with the same model stack (pinned in "
        "`bench/peers/constraints.txt`); its service lives in `bench/peers/<peer>/`. Models: M1 "
        "a RandomForestClassifier(200 trees, depth 12) on 20 features, answer predict_proba; M2 "
        "an ONNX MLP (64 -> 4 x 2048 -> 3); M3 all-MiniLM-L6-v2 embeddings (PyTorch CPU). One "
        "example per request, JSON. Every server's answer is checked against the model's own "
        "prediction at its first answer and after the load.",
        "",
        "| peer | version | torch / onnxruntime / scikit-learn | settings |",
        "|---|---|---|---|",
    ]
    for info in peers.values():
        if "error" in info:
            lines.append(f"| {info['name']} | did not install | | `{one_line(info['error'])}` |")
            continue
        versions = info["versions"]
        own = next(iter(versions.values()))
        stack = " / ".join(versions.get(k, "?") for k in ("torch", "onnxruntime", "scikit-learn"))
        for variant, run in info["variants"].items():
            row = info["name"] if variant == "default" else run["label"]
            lines.append(f"| {row} | {own} | {stack} | {run['settings']} |")
    if names:
        lines += _default_tables(by, names, models, peers, args)
    lines += report_equal.section(outcomes, peers, args)
    failures = [o for o in outcomes if o.error]
    if failures:
        lines += ["", "### Failures", ""]
        lines += [f"- {_row_label(peers, o)} {o.model}: `{one_line(o.error)}`" for o in failures]
    if charts:
        lines += ["", "Charts: " + ", ".join(f"[{c.stem}](peers/charts/{c.name})" for c in charts)]
    write_section("peers", "\n".join(lines))


def _row_label(peers: dict, o: Any) -> str:
    return (
        peers[o.peer]["name"]
        if o.variant == "default"
        else peers[o.peer]["variants"][o.variant]["label"]
    )


def _default_tables(
    by: dict, names: list[str], models: list[str], peers: dict, args: argparse.Namespace
) -> list[str]:
    """Every platform as it comes: the headline ratios, then a table per metric."""
    lines = _headline(by, names, models, peers)
    lines += _cold(by, names, models, peers, args)
    lines += _metric_table(
        by,
        names,
        models,
        peers,
        f"### Warm latency at concurrency 1 (about {args.requests} requests: one wrk run sized "
        "from a 2 s run), ms: p50 / p90 / p99",
        warm_cell,
    )
    lines += _metric_table(
        by,
        names,
        models,
        peers,
        f"### Throughput at concurrency 32 ({args.duration} s): requests/s (p50 / p99 ms)",
        load_cell,
    )
    lines += _metric_table(
        by,
        names,
        models,
        peers,
        "### Peak RSS of the serving process tree, MiB: idle / under the concurrency-32 load",
        lambda o: f"{o.rss_idle_mib:.0f} / {o.rss_load_mib:.0f}" if o.load else "-",
    )
    lines += [
        "",
        "RSS counts a page that forked processes share once per process, so it overstates what "
        "a tree of forks (mlambda's zygotes, templates and instances; a multi-process server) "
        "holds. PSS divides each shared page among the processes that share it; its sum is the "
        "memory the tree really uses:",
    ]
    lines += _metric_table(
        by,
        names,
        models,
        peers,
        "### Peak PSS of the serving process tree, MiB: idle / under the concurrency-32 load",
        lambda o: f"{o.pss_idle_mib:.0f} / {o.pss_load_mib:.0f}" if o.load else "-",
    )
    return lines


def _headline(by: dict, names: list[str], models: list[str], peers: dict) -> list[str]:
    """Ratios mlambda / peer: the claims."""
    if "mlambda" not in names:
        return []
    lines = [
        "",
        "### Headline: mlambda against each peer (ratios; > 1 means mlambda is better)",
        "",
        "Cold start = peer's median launch-to-answer / mlambda's; warm p50 = peer's p50 / "
        "mlambda's; throughput = mlambda's requests/s / peer's; memory = peer's peak PSS under "
        "load / mlambda's (PSS: see the memory tables).",
        "",
        "| peer | model | cold start | warm p50 | throughput | memory |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        if name == "mlambda":
            continue
        for model in models:
            ours, theirs = by.get(("mlambda", model)), by.get((name, model))
            if not (ok(ours) and ok(theirs)):
                continue
            cold = statistics.median(theirs.cold) / statistics.median(ours.cold)
            warm = theirs.warm["p50"] / ours.warm["p50"]
            rps = ours.load["rps"] / theirs.load["rps"]
            memory = theirs.pss_load_mib / ours.pss_load_mib
            lines.append(
                f"| {peers[name]['name']} | {MODEL_NAMES[model]} | {cold:.2f}x | {warm:.2f}x | "
                f"{rps:.2f}x | {memory:.2f}x |"
            )
    return lines


def _cold(
    by: dict, names: list[str], models: list[str], peers: dict, args: argparse.Namespace
) -> list[str]:
    def cell(o: Any) -> str:
        if o is None or not o.cold:
            return "failed" if o is not None and o.error else "-"
        return f"{statistics.median(o.cold):.2f} ({min(o.cold):.2f}-{max(o.cold):.2f})"

    title = (
        f"### Cold start: process launch to first correct answer, s ({args.launches} launches: "
        "median, min-max)"
    )
    lines = _table(by, names, models, peers, title, cell)
    zero = [
        (n, m, by[(n, m)]) for n in names for m in models if (n, m) in by and by[(n, m)].from_zero
    ]
    if zero:
        lines += [
            "",
            "Scale from zero while running (the platform up, no instance of the model): request "
            "to answer, ms, median (min-max):",
            "",
        ]
        for name, model, o in zero:
            ms = [t * 1000 for t in o.from_zero]
            lines.append(
                f"- {peers[name]['name']} {MODEL_NAMES[model]}: {statistics.median(ms):.1f} "
                f"({min(ms):.1f}-{max(ms):.1f})"
            )
    return lines


def _metric_table(
    by: dict, names: list[str], models: list[str], peers: dict, title: str, cell: Any
) -> list[str]:
    """A table of a measured metric; a peer whose load never ran shows "failed"."""
    return _table(by, names, models, peers, title, measured(cell))


def _table(
    by: dict, names: list[str], models: list[str], peers: dict, title: str, cell: Any
) -> list[str]:
    """A model-by-peer table; ``cell`` turns a peer's outcome (or None) into its text."""
    headers = [peers[n]["name"] for n in names]
    return grid(title, headers, models, lambda model: [cell(by.get((n, model))) for n in names])


def draw(by: dict, names: list[str], models: list[str], peers: dict) -> list[Path]:
    """A grouped bar chart per metric: models on the axis, one bar per peer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    CHARTS.mkdir(exist_ok=True)
    metrics = {
        "cold-start": (
            "Cold start: launch to first answer (s, median)",
            lambda o: statistics.median(o.cold) if o.cold else None,
        ),
        "warm-p50": ("Warm latency, concurrency 1 (p50 ms)", lambda o: o.warm.get("p50")),
        "throughput": ("Throughput, concurrency 32 (requests/s)", lambda o: o.load.get("rps")),
        "memory": (
            "Peak PSS of the serving tree under load (MiB)",
            lambda o: o.pss_load_mib if o.load else None,
        ),
    }
    written = []
    width = 0.8 / max(1, len(names))
    for key, (title, value) in metrics.items():
        figure, axis = plt.subplots(figsize=(8, 4.5), dpi=110)
        for index, name in enumerate(names):
            heights = []
            for model in models:
                o = by.get((name, model))
                v = value(o) if o is not None else None
                heights.append(v if v is not None else 0)
            positions = [m + (index - (len(names) - 1) / 2) * width for m in range(len(models))]
            axis.bar(positions, heights, width, label=peers[name]["name"])
        axis.set_xticks(range(len(models)), [MODEL_NAMES[m] for m in models])
        axis.set_title(title)
        if key in ("cold-start", "warm-p50"):
            axis.set_yscale("log")
        axis.legend(fontsize=8)
        axis.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        path = CHARTS / f"{key}.png"
        figure.savefig(path)
        plt.close(figure)
        written.append(path)
    return written
