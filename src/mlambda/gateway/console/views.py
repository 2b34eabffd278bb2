"""What each console page shows, gathered from the platform (no HTML here): the functions with
their state and last hour, one function's charts, instances, invocations and triggers, an
invocation's REPORT and waterfall, the asynchronous queue, cost and alarms."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mlambda.events.queue import EXPIRED, FAILED
from mlambda.observe.cost import Rates, cost_rows
from mlambda.observe.invocation_spans import plan
from mlambda.observe.processes import process_rows
from mlambda.observe.usage import day_of

if TYPE_CHECKING:
    from mlambda.observe.recent import Recent
    from mlambda.platform import Platform

HOUR, DAY = 3600, 86400
# The charts: (title, metric, statistic) each, over a window read at this period.
CHARTS = (
    ("Invocations", "Invocations", "Sum"),
    ("Errors", "Errors", "Sum"),
    ("Duration p50 (ms)", "Duration", "p50"),
    ("Duration p99 (ms)", "Duration", "p99"),
    ("Cold starts", "ColdStarts", "Sum"),
)
WINDOWS = {"hour": (HOUR, 60), "day": (DAY, 900)}
MAX_DEAD_LETTERS = 100


def functions(platform: Platform, now: float) -> list[dict[str, Any]]:
    """Every function with its state now and its last hour."""
    history = platform.observability.history
    alarming = {a.rule.function for a in platform.observability.alarms.list() if a.state == "ALARM"}
    released = platform.registry.releases.counts()
    rows = []
    for record in platform.registry.list():
        name, spec = record.name, record.spec
        pool = platform.router.pools.get(name)
        counts = pool.counts() if pool else {"busy": 0, "idle": 0, "starting": 0}
        calls = history.total(name, "Invocations", "Sum", now - HOUR, now)
        rows.append(
            {
                "name": name,
                "kind": f"model ({spec.framework or 'auto'})"
                if spec.model
                else spec.runtime or "python",
                "memory": spec.memory_mb,
                "busy": counts["busy"],
                "idle": counts["idle"] + counts["starting"],
                "invocations": int(calls or 0),
                "errors": int(history.total(name, "Errors", "Sum", now - HOUR, now) or 0),
                "average": history.total(name, "Duration", "Average", now - HOUR, now),
                "alarm": name in alarming or "*" in alarming,
                "versions": released.get(name, (0, 0))[0],
                "aliases": released.get(name, (0, 0))[1],
            }
        )
    return rows


def charts(platform: Platform, name: str, window: str, now: float) -> dict[str, Any]:
    """Each chart's points over the window: timestamps, and values (None: no data)."""
    span, period = WINDOWS[window]
    history = platform.observability.history
    series = {}
    stamps: list[float] = []
    for title, metric, statistic in CHARTS:
        points = history.series(name, metric, statistic, period, now - span, now)
        stamps = [t for t, _ in points]
        series[title] = [v for _, v in points]
    return {"timestamps": stamps, "series": series, "period": period}


def function(platform: Platform, name: str, now: float) -> dict[str, Any]:
    record = platform.get(name)
    triggers = [platform.triggers.view(t) for t in platform.triggers.store.list(name)]
    return {
        "record": record.to_dict(),
        "versions": [v.to_dict() for v in platform.versions.versions(name)],
        "aliases": [a.to_dict() for a in platform.versions.aliases(name)],
        "triggers": triggers,
        "alarms": [
            a for a in platform.observability.alarms.list() if a.rule.function in (name, "*")
        ],
        "recent": [_recent(r) for r in platform.observability.recent.of(name)],
    }


def instances(platform: Platform, name: str) -> list[dict[str, Any]]:
    """The function's instances, and the zygotes and templates it starts from, with memory."""
    # Chosen before their memory is read: reading it costs a /proc read per process.
    shared = [p for p in platform.backend.shared_processes() if p.name.split(":")[0] in (name, "")]
    pools = {k: v for k, v in platform.router.pools.items() if k.split(":")[0] == name}
    return process_rows(shared, pools, time.time())


def invocation(platform: Platform, name: str, request_id: str) -> dict[str, Any] | None:
    """One recent invocation: its REPORT, and the waterfall of its spans (ms from its start)."""
    recent = platform.observability.recent.get(name, request_id)
    if recent is None:
        return None
    spans = plan(recent.timings)
    start = min([recent.timings.entered_ns, *(s.start_ns for s in spans)])
    end = max(s.end_ns for s in spans)
    total = max(end - start, 1)
    bars = [
        {
            "name": s.name,
            "depth": 2 if s.parent == "start" else 1,
            "offset": 100 * (s.start_ns - start) / total,
            "width": max(0.3, 100 * (s.end_ns - s.start_ns) / total),
            "ms": (s.end_ns - s.start_ns) / 1e6,
            "attributes": _shown(s.attributes),
        }
        for s in spans
    ]
    call = {
        "name": f"invoke {name}",
        "depth": 0,
        "offset": 0.0,
        "width": 100.0,
        "ms": total / 1e6,
        "attributes": {},
    }
    return {**_recent(recent), "bars": [call, *bars]}


async def dead_letters(platform: Platform) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Failed and expired asynchronous invocations (newest first), and the queue per function."""
    queue = platform.async_invoker.queue
    records = [
        r for state in (FAILED, EXPIRED) for r in await queue.list(None, state, MAX_DEAD_LETTERS)
    ]
    records.sort(key=lambda r: r.finished_at or r.updated_at, reverse=True)
    depth = await queue.depth()
    now = time.time()
    waiting = {
        name: {"count": count, "oldest": now - oldest} for name, (count, oldest) in depth.items()
    }
    return [r.to_dict() for r in records[:MAX_DEAD_LETTERS]], waiting


def cost(platform: Platform, now: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    settings = platform.settings
    rates = Rates(
        settings.price_gb_second, settings.price_per_million_requests, settings.machine_hourly_cost
    )
    return cost_rows(platform.usage.rows(day_of(now - 7 * DAY)), rates, "function", 7 * 24)


def _shown(attributes: dict[str, str | int | float | bool]) -> dict[str, str | int | float]:
    """As OpenTelemetry writes attributes: true, not True."""
    return {k: str(v).lower() if isinstance(v, bool) else v for k, v in attributes.items()}


def _recent(recent: Recent) -> dict[str, Any]:
    return {
        "request_id": recent.request_id,
        "version": recent.version,
        "ended_at": recent.ended_at,
        "duration_ms": recent.timings.duration_ms,
        "cold": recent.timings.init_parts is not None,
        "error_type": recent.error_type,
        "report": recent.report,
        "trace_id": recent.trace_id,
    }
