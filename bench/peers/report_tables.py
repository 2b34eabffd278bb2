"""Markdown helpers shared by the peer benchmark's report (report.py, report_equal.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeGuard

MODEL_NAMES = {"m1": "M1 forest", "m2": "M2 ONNX MLP", "m3": "M3 MiniLM"}


def one_line(text: str) -> str:
    return " ".join(text.split())[:400].replace("|", "/").replace("`", "'")


def ok(o: Any) -> TypeGuard[Any]:
    """The outcome ran its load without an error, so its numbers can be compared."""
    return o is not None and not o.error and bool(o.load)


def measured(cell: Callable[[Any], str]) -> Callable[[Any], str]:
    """A cell of a measured metric: "failed" for a peer whose load never ran."""
    return lambda o: "failed" if o is None or (o.error and not o.load) else cell(o)


def grid(
    title: str, headers: list[str], models: list[str], cells: Callable[[str], list[str]]
) -> list[str]:
    """A model-by-column table under its title (none when empty): ``cells(model)`` gives the
    row's cells, one per header."""
    lines = ["", title] if title else []
    lines += [
        "",
        "| model | " + " | ".join(headers) + " |",
        "|---|" + "---|" * len(headers),
    ]
    for model in models:
        lines.append(f"| {MODEL_NAMES[model]} | " + " | ".join(cells(model)) + " |")
    return lines


def warm_cell(o: Any) -> str:
    return f"{o.warm['p50']:.2f} / {o.warm['p90']:.2f} / {o.warm['p99']:.2f}" if o.warm else "-"


def load_cell(o: Any) -> str:
    if not o.load:
        return "-"
    errors = f", {int(o.load['errors'])} errors" if o.load.get("errors") else ""
    return f"{o.load['rps']:.0f} ({o.load['p50']:.0f} / {o.load['p99']:.0f}){errors}"
