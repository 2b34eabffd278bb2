"""Lambda's START / END / REPORT lines (pure formatting)."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Report:
    request_id: str
    version: str
    duration_ms: float
    memory_mb: int
    max_memory_mb: int
    init_ms: float | None = None
    # Where the cold start's time went: tier, and (fork, import, init) ms; prepare = building a
    # zygote or template for this start.
    init_tier: str | None = None
    init_parts: tuple[float, float, float, float] | None = None
    # Set when the invocation did not complete: "timeout" or "error".
    status: str | None = None
    error_type: str | None = None
    # Dynamic batching: how many invocations shared the call; time queued before it.
    batch_size: int | None = None
    queue_wait_ms: float | None = None

    @property
    def billed_ms(self) -> int:
        return max(1, math.ceil(self.duration_ms))

    def start_line(self) -> str:
        return f"START RequestId: {self.request_id} Version: {self.version}"

    def end_line(self) -> str:
        return f"END RequestId: {self.request_id}"

    def report_line(self) -> str:
        fields = [
            f"REPORT RequestId: {self.request_id}",
            f"Duration: {self.duration_ms:.2f} ms",
            f"Billed Duration: {self.billed_ms} ms",
            f"Memory Size: {self.memory_mb} MB",
            f"Max Memory Used: {self.max_memory_mb} MB",
        ]
        if self.init_ms is not None:
            fields.append(f"Init Duration: {self.init_ms:.2f} ms")
            if self.init_parts is not None:
                prepare, fork, imports, init = self.init_parts
                fields.append(
                    f"Init Breakdown: tier {self.init_tier}, prepare {prepare:.2f} ms, "
                    f"fork {fork:.2f} ms, import {imports:.2f} ms, init {init:.2f} ms"
                )
        if self.batch_size is not None:
            fields.append(f"Batch Size: {self.batch_size}")
        if self.queue_wait_ms is not None:
            fields.append(f"Queue Wait: {self.queue_wait_ms:.2f} ms")
        if self.status is not None:
            fields.append(f"Status: {self.status}")
        if self.error_type is not None:
            fields.append(f"Error Type: {self.error_type}")
        return "\t".join(fields) + "\t"
