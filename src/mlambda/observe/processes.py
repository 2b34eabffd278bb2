"""The rows of `mlambda ps`: shared processes (zygotes, templates, spares) and instances."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mlambda.backends.base import SharedProcess
from mlambda.observe.memory import memory_kb
from mlambda.pool.pool import Pool


def process_rows(
    shared: Iterable[SharedProcess], pools: Mapping[str, Pool], now: float
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for process in shared:
        state = "waiting" if process.kind == "spare" else "ready"
        rows.append(
            _row(process.kind, process.name, process.pid, state, "", process.started_at, now)
        )
        rows[-1]["threads"] = process.threads
    for name, pool in sorted(pools.items()):
        for instance in pool.instances:
            state = "busy" if instance.active else instance.state.value
            state = "idle" if state == "ready" else state
            rows.append(
                _row("instance", name, instance.pid, state, instance.tier, instance.created, now)
            )
            rows[-1]["threads"] = instance.ready.threads if instance.ready else 0
    return rows


def _row(
    kind: str, name: str, pid: int, state: str, tier: str, started: float, now: float
) -> dict[str, object]:
    rss, pss = memory_kb(pid)
    return {
        "kind": kind,
        "function": name,
        "pid": pid,
        "state": state,
        "tier": tier,
        "ageSeconds": round(now - started, 1),
        "rssKiB": rss,
        "pssKiB": pss,
    }
