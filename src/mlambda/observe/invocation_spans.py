"""The spans of one invocation inside its pool, laid out from what the pool measured (pure):
the wait for an instance, the instance's start on a cold start (prepare, fork, import, init,
with the tier it came from), and the handler's run.

    spans = plan(Timings(entered_ns, ended_ns, queue_wait_ms=3.0, duration_ms=12.5))
    # [PlannedSpan("queue wait", ...), PlannedSpan("handler", ...)]

``parent`` names the span a planned span hangs under: "invoke" (the call the pool served) or
"start" (the instance start)."""

from __future__ import annotations

import dataclasses

MS = 1_000_000
PARTS = ("prepare", "fork", "import", "init")
# A wait shorter than this is the pool's own bookkeeping, not a wait for an instance.
MIN_WAIT_MS = 0.1


@dataclasses.dataclass(frozen=True)
class Timings:
    entered_ns: int  # the call reached the pool
    ended_ns: int  # its outcome came back
    queue_wait_ms: float = 0.0
    duration_ms: float = 0.0
    # (prepare, fork, import, init) ms on a cold start, and where the instance came from.
    init_parts: tuple[float, float, float, float] | None = None
    tier: str = ""
    batch_size: int = 1


@dataclasses.dataclass(frozen=True)
class PlannedSpan:
    key: str
    name: str
    parent: str
    start_ns: int
    end_ns: int
    attributes: dict[str, str | int | float | bool] = dataclasses.field(default_factory=dict)


def plan(t: Timings) -> list[PlannedSpan]:
    handler_start = t.ended_ns - int(t.duration_ms * MS)
    spans = []
    ready = handler_start
    if t.queue_wait_ms >= MIN_WAIT_MS:
        ready = t.entered_ns + int(t.queue_wait_ms * MS)
        spans.append(PlannedSpan("queue", "queue wait", "invoke", t.entered_ns, ready))
    if t.init_parts is not None:
        spans += _start(t, min(ready, handler_start))
    attributes: dict[str, str | int | float | bool] = {"faas.coldstart": t.init_parts is not None}
    if t.batch_size > 1:
        attributes["mlambda.batch_size"] = t.batch_size
    spans.append(PlannedSpan("handler", "handler", "invoke", handler_start, t.ended_ns, attributes))
    return spans


def _start(t: Timings, ready_ns: int) -> list[PlannedSpan]:
    """The instance start, ending when the instance was ready; its parts laid end to end."""
    assert t.init_parts is not None
    lengths = [int(ms * MS) for ms in t.init_parts]
    at = ready_ns - sum(lengths)
    spans = [
        PlannedSpan("start", "instance start", "invoke", at, ready_ns, {"mlambda.tier": t.tier})
    ]
    for part, length in zip(PARTS, lengths, strict=True):
        if length > 0:
            spans.append(PlannedSpan(part, part, "start", at, at + length))
        at += length
    return spans
