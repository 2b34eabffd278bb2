"""Prometheus metrics, in a registry owned by the Platform (never the process-global one)."""

from __future__ import annotations

import dataclasses
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
# Distinct errorType labels kept per function version (label cardinality stays bounded).
MAX_ERROR_TYPES = 20
INIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclasses.dataclass(frozen=True)
class Series:
    """One function version's series that every invocation touches, looked up once: a label
    lookup takes a lock and builds a key, several times a call otherwise."""

    successes: Any
    predictions: Any
    cpu: Any
    duration: Any
    queue_wait: Any
    batch_size: Any
    concurrent: Any
    instances: dict[str, Any]


class Metrics:
    def __init__(self) -> None:
        self._series: dict[tuple[str, str], Series] = {}
        self._error_types: dict[tuple[str, str], set[str]] = {}
        self.registry = CollectorRegistry()
        r = self.registry
        self.invocations = Counter(
            "mlambda_invocations",
            "Invocations completed, by outcome",
            ["function", "version", "outcome"],
            registry=r,
        )
        self.errors = Counter(
            "mlambda_errors",
            "Invocations that failed, by errorType",
            ["function", "version", "error_type"],
            registry=r,
        )
        self.throttles = Counter(
            "mlambda_throttles",
            "Requests refused with 429 (queue bound reached)",
            ["function", "version"],
            registry=r,
        )
        self.timeouts = Counter(
            "mlambda_timeouts",
            "Invocations killed at the function timeout",
            ["function", "version"],
            registry=r,
        )
        self.duration = Histogram(
            "mlambda_duration_seconds",
            "Handler duration",
            ["function", "version"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "mlambda_queue_wait_seconds",
            "Time a request waited for an instance (or a batch) before it ran",
            ["function", "version"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "mlambda_batch_size",
            "Invocations per call of the handler or model (1 without [function.batch])",
            ["function", "version"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.init_duration = Histogram(
            "mlambda_init_duration_seconds",
            "Instance init (import + handler module init)",
            ["function", "version"],
            buckets=INIT_BUCKETS,
            registry=r,
        )
        self.cold_starts = Counter(
            "mlambda_cold_starts",
            "Invocations served by a freshly started instance, by where it came from",
            ["function", "version", "tier"],
            registry=r,
        )
        self.predictions = Counter(
            "mlambda_predictions",
            "Rows a model answered (a handler's event counts one)",
            ["function", "version"],
            registry=r,
        )
        self.cpu = Counter(
            "mlambda_cpu_seconds",
            "CPU time instances spent on invocations",
            ["function", "version"],
            registry=r,
        )
        self.provisioned_utilization = Gauge(
            "mlambda_provisioned_utilization_ratio",
            "Busy provisioned instances over provisioned instances (absent without any)",
            ["function", "version"],
            registry=r,
        )
        self.dead_letters = Counter(
            "mlambda_async_dead_letters",
            "Asynchronous invocations that ended without success, by how (failed, expired)",
            ["function", "reason"],
            registry=r,
        )
        self.instance_starts = Counter(
            "mlambda_instance_start",
            "Instances started, by where they came from (process, base, runtime, template)",
            ["function", "version", "tier"],
            registry=r,
        )
        self.concurrent = Gauge(
            "mlambda_concurrent_executions",
            "Invocations running now",
            ["function", "version"],
            registry=r,
        )
        self.instances = Gauge(
            "mlambda_instances", "Instances by state", ["function", "version", "state"], registry=r
        )

        self.async_depth = Gauge(
            "mlambda_async_queue_depth",
            "Asynchronous invocations accepted and not finished (queued or running)",
            ["function"],
            registry=r,
        )
        self.async_oldest = Gauge(
            "mlambda_async_oldest_age_seconds",
            "Age of the oldest unfinished asynchronous invocation",
            ["function"],
            registry=r,
        )

    def series(self, function: str, version: str) -> Series:
        found = self._series.get((function, version))
        if found is None:
            labels = (function, version)
            found = self._series[labels] = Series(
                successes=self.invocations.labels(*labels, "success"),
                predictions=self.predictions.labels(*labels),
                cpu=self.cpu.labels(*labels),
                duration=self.duration.labels(*labels),
                queue_wait=self.queue_wait.labels(*labels),
                batch_size=self.batch_size.labels(*labels),
                concurrent=self.concurrent.labels(*labels),
                instances={
                    state: self.instances.labels(*labels, state)
                    for state in ("starting", "busy", "idle")
                },
            )
        return found

    def async_queue(self, depth: dict[str, tuple[int, float]], now: float) -> None:
        """The queue as it is now: functions with nothing waiting drop out."""
        self.async_depth.clear()
        self.async_oldest.clear()
        for function, (count, oldest) in depth.items():
            self.async_depth.labels(function).set(count)
            self.async_oldest.labels(function).set(max(0.0, now - oldest))

    def forget(self, function: str, version: str | None = None) -> None:
        """Drop every series of a removed function (or of one deleted version), so /metrics
        does not report it forever."""
        for key in [k for k in self._series if k[0] == function and version in (None, k[1])]:
            del self._series[key]
        labels = (
            {"function": function}
            if version is None
            else {"function": function, "version": version}
        )
        for metric in (
            self.invocations,
            self.errors,
            self.throttles,
            self.timeouts,
            self.duration,
            self.queue_wait,
            self.batch_size,
            self.init_duration,
            self.cold_starts,
            self.instance_starts,
            self.concurrent,
            self.instances,
            self.predictions,
            self.cpu,
            self.provisioned_utilization,
        ):
            metric.remove_by_labels(labels)
        if version is None:
            self.async_depth.remove_by_labels(labels)
            self.async_oldest.remove_by_labels(labels)
            self.dead_letters.remove_by_labels(labels)
            self._error_types = {k: v for k, v in self._error_types.items() if k[0] != function}

    def error_type(self, function: str, version: str, error_type: str) -> str:
        """The label for an errorType: user code names its exceptions, so past
        MAX_ERROR_TYPES distinct ones per function version the rest count as "Other"."""
        seen = self._error_types.setdefault((function, version), set())
        if error_type in seen or len(seen) < MAX_ERROR_TYPES:
            seen.add(error_type)
            return error_type
        return "Other"

    def render(self) -> bytes:
        return generate_latest(self.registry)
