"""What usage costs (pure): as Lambda bills it (GB-seconds of memory x billed duration, and
requests) and here (the machine's hourly cost over the period, shared out by GB-seconds).

    rows = cost_rows(usage, Rates(...), by="function", hours=24 * 7)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from mlambda.errors import InvalidRequest
from mlambda.observe.usage import Key, Usage

BY = ("function", "version", "day")
MB_MS_PER_GB_S = 1024 * 1000
_SINCE = re.compile(r"(\d+)([mhd])")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400}


@dataclasses.dataclass(frozen=True)
class Rates:
    gb_second: float
    per_million_requests: float
    machine_hourly: float


def since_seconds(text: str) -> int:
    """``30m``, ``24h``, ``7d``: how far back a report goes; a 400 otherwise."""
    match = _SINCE.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise InvalidRequest(f"since must be like 30m, 24h or 7d, got {text!r}")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def group(usage: Mapping[Key, Usage], by: str) -> dict[str, Usage]:
    """Usage summed per function, per function:version, or per day."""
    if by not in BY:
        raise InvalidRequest(f"by must be one of {', '.join(BY)}, got {by!r}")
    grouped: dict[str, Usage] = {}
    for (function, version, day), counts in usage.items():
        name = {"function": function, "version": f"{function}:{version}", "day": day}[by]
        grouped.setdefault(name, Usage()).add(counts)
    return grouped


def priced(name: str, usage: Usage, rates: Rates, here_share: float) -> dict[str, Any]:
    gb_seconds = usage.mb_ms / MB_MS_PER_GB_S
    on_lambda = gb_seconds * rates.gb_second + usage.invocations * rates.per_million_requests / 1e6
    return {
        "name": name,
        "invocations": usage.invocations,
        "errors": usage.errors,
        "billedSeconds": usage.billed_ms / 1000,
        "gbSeconds": gb_seconds,
        "lambdaCost": on_lambda,
        "lambdaCostPerInvocation": _per(on_lambda, usage.invocations),
        "hereCost": here_share,
        "hereCostPerInvocation": _per(here_share, usage.invocations),
        "cpuSeconds": usage.cpu_ms / 1000,
        "predictions": usage.predictions,
        "lambdaCostPerPrediction": _per(on_lambda, usage.predictions),
        "hereCostPerPrediction": _per(here_share, usage.predictions),
    }


def _per(cost: float, count: int) -> float | None:
    return cost / count if count else None


def cost_rows(
    usage: Mapping[Key, Usage], rates: Rates, by: str, hours: float
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows (largest Lambda cost first) and their total. The machine's cost over ``hours``
    is shared out in proportion to each row's GB-seconds (all of it to no one when idle)."""
    grouped = group(usage, by)
    total = Usage()
    for counts in grouped.values():
        total.add(counts)
    machine = rates.machine_hourly * hours
    rows = [
        priced(name, counts, rates, machine * counts.mb_ms / total.mb_ms if total.mb_ms else 0.0)
        for name, counts in grouped.items()
    ]
    rows.sort(key=lambda row: (-row["lambdaCost"], row["name"]))
    return rows, priced("total", total, rates, machine)
