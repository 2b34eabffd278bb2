"""What a pool reports: the outcome of one invocation, and the observer that receives it."""

from __future__ import annotations

import dataclasses
from typing import Any

from mlambda.errors import FunctionError
from mlambda.registry.model import FunctionRecord
from mlambda.runtime.trace_header import TraceContext


@dataclasses.dataclass
class Invocation:
    """What one invoke produced, for the gateway and the REPORT line."""

    request_id: str
    body: bytes = b""
    error: FunctionError | None = None
    logs: str = ""
    duration_ms: float = 0.0
    max_memory_mb: int = 0
    init_ms: float | None = None
    init_tier: str | None = None
    init_parts: tuple[float, float, float, float] | None = None
    instance_id: str = ""
    pid: int = 0
    # Response headers a protocol needs (v2 binary data).
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    # Invocations that shared this one's call ([function.batch]); time spent queued.
    batch_size: int = 1
    queue_wait_ms: float = 0.0
    # CPU time the instance spent on it; rows predicted (a handler's event counts one).
    cpu_ms: float = 0.0
    rows: int = 1
    # Its trace: the call's span (the handler's parent), the handler's span id, when the call
    # reached the pool (epoch ns), and spans user code made.
    trace: TraceContext | None = None
    handler_span: str = ""
    entered_ns: int = 0
    spans: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # The version that ran ($LATEST or a published one): an alias picks one per call.
    version: str = "$LATEST"


class Observer:
    """What a pool reports; the Platform's observer writes logs and metrics. This one drops all."""

    def invocation(self, record: FunctionRecord, invocation: Invocation) -> None:
        pass

    def output(self, record: FunctionRecord, text: str) -> None:
        pass

    def throttled(self, record: FunctionRecord, reason: str = "") -> None:
        pass

    def instances(self, record: FunctionRecord, counts: dict[str, int]) -> None:
        pass

    def instance_started(self, record: FunctionRecord, tier: str) -> None:
        pass
