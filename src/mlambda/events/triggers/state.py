"""What a running trigger reports: its state, counts, lag and last error, for the API, the CLI
and /metrics."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

STARTING, RUNNING, RECONNECTING, DISABLED, STOPPED = (
    "starting",
    "running",
    "reconnecting",
    "disabled",
    "stopped",
)
# What became of a message (a queue) or a record (a stream).
OUTCOMES = ("succeeded", "retried", "dead_lettered", "given_up")


class TriggerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "mlambda_trigger_messages",
            "Messages (queue) or records (stream) a trigger handed to its function, by outcome",
            ["function", "trigger", "outcome"],
            registry=registry,
        )
        self.batches = Counter(
            "mlambda_trigger_batches",
            "Batches a trigger invoked its function with",
            ["function", "trigger"],
            registry=registry,
        )
        self.lag = Gauge(
            "mlambda_trigger_lag",
            "Messages waiting at the broker for a trigger (queue) or records behind (stream)",
            ["function", "trigger"],
            registry=registry,
        )
        self.iterator_age = Gauge(
            "mlambda_trigger_iterator_age_seconds",
            "Age of the last record a stream trigger read when it was read (IteratorAge)",
            ["function", "trigger"],
            registry=registry,
        )

    def forget(self, function: str, trigger: str) -> None:
        labels = {"function": function, "trigger": trigger}
        for metric in (self.messages, self.batches, self.lag, self.iterator_age):
            metric.remove_by_labels(labels)


@dataclasses.dataclass
class TriggerState:
    function: str
    trigger: str
    metrics: TriggerMetrics | None = None
    state: str = STARTING
    batches: int = 0
    counts: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    lag: int | None = None
    iterator_age_s: float | None = None
    concurrency: int = 0  # batches running now
    last_error: str = ""
    last_error_at: float | None = None
    last_batch_at: float | None = None

    def batch(self, outcomes: dict[str, int]) -> None:
        self.batches += 1
        self.last_batch_at = time.time()
        for outcome, count in outcomes.items():
            self.counts[outcome] += count
        if self.metrics is not None:
            self.metrics.batches.labels(self.function, self.trigger).inc()
            for outcome, count in outcomes.items():
                if count:
                    self.metrics.messages.labels(self.function, self.trigger, outcome).inc(count)

    def failed(self, message: str) -> None:
        self.last_error = message[:1000]
        self.last_error_at = time.time()

    def lagging(self, lag: int | None) -> None:
        self.lag = lag
        if self.metrics is not None and lag is not None:
            self.metrics.lag.labels(self.function, self.trigger).set(lag)

    def aged(self, seconds: float) -> None:
        self.iterator_age_s = seconds
        if self.metrics is not None:
            self.metrics.iterator_age.labels(self.function, self.trigger).set(seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "batches": self.batches,
            "processed": self.counts["succeeded"],
            "retried": self.counts["retried"],
            "deadLettered": self.counts["dead_lettered"],
            "failed": self.counts["dead_lettered"] + self.counts["given_up"],
            "lag": self.lag,
            "iteratorAgeSeconds": self.iterator_age_s,
            "concurrency": self.concurrency,
            "lastError": self.last_error or None,
            "lastErrorAt": self.last_error_at,
            "lastBatchAt": self.last_batch_at,
        }
