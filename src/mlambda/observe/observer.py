"""The Platform's observer: pools report here; it writes logs and metrics."""

from __future__ import annotations

import logging
import time

from mlambda.observe.history import MetricHistory
from mlambda.observe.invocation_spans import Timings, plan
from mlambda.observe.logs import LogSink
from mlambda.observe.metrics import Metrics
from mlambda.observe.recent import Recent, RecentInvocations
from mlambda.observe.report import Report
from mlambda.observe.tracing import Tracing, child_of
from mlambda.observe.usage import UsageLedger
from mlambda.pool.invocation import Invocation, Observer
from mlambda.registry.model import FunctionRecord
from mlambda.runtime.trace_header import TraceContext

# What `serve` prints as it runs: deploys, removals, failed and throttled invocations.
terminal = logging.getLogger("mlambda.events")


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def report_for(record: FunctionRecord, invocation: Invocation) -> Report:
    error = invocation.error
    status = None
    if error is not None and error.error_type == "Sandbox.Timedout":
        status = "timeout"
    elif error is not None and error.error_type.startswith("Runtime."):
        status = "error"
    batched = record.spec.batch is not None
    return Report(
        request_id=invocation.request_id,
        version=record.version,
        duration_ms=invocation.duration_ms,
        memory_mb=record.spec.memory_mb,
        max_memory_mb=invocation.max_memory_mb,
        init_ms=invocation.init_ms,
        init_tier=invocation.init_tier,
        init_parts=invocation.init_parts,
        status=status,
        error_type=error.error_type if status == "error" and error is not None else None,
        # Only for batched functions: other REPORT lines stay exactly as Lambda writes them.
        batch_size=invocation.batch_size if batched else None,
        queue_wait_ms=invocation.queue_wait_ms if batched else None,
    )


def log_lines(
    record: FunctionRecord, invocation: Invocation, report: Report | None = None
) -> list[str]:
    """An invocation's log: START, its output, a failure line, END and REPORT."""
    report = report or report_for(record, invocation)
    lines = [report.start_line(), *invocation.logs.splitlines()]
    if invocation.error is not None and report.status is not None:
        lines.append(f"{invocation.request_id} {invocation.error.message}")
    return [*lines, report.end_line(), report.report_line()]


def timings_of(invocation: Invocation, ended_ns: int) -> Timings:
    """What the pool measured of an invocation, for its spans and the console's waterfall."""
    return Timings(
        invocation.entered_ns or ended_ns - int(invocation.duration_ms * 1e6), ended_ns,
        invocation.queue_wait_ms, invocation.duration_ms, invocation.init_parts,
        invocation.init_tier or "", invocation.batch_size,
    )  # fmt: skip


class PlatformObserver(Observer):
    def __init__(
        self,
        logs: LogSink,
        metrics: Metrics,
        usage: UsageLedger | None = None,
        history: MetricHistory | None = None,
        tracing: Tracing | None = None,
        recent: RecentInvocations | None = None,
    ) -> None:
        self.logs = logs
        self.metrics = metrics
        self.usage = usage
        self.history = history
        self.tracing = tracing if tracing is not None and tracing.enabled else None
        self.recent = recent  # each function's last invocations, for the console
        self._provisioned: set[tuple[str, str]] = set()  # versions with a utilisation gauge

    def invocation(self, record: FunctionRecord, invocation: Invocation) -> None:
        ended_ns = time.time_ns()
        timings = timings_of(invocation, ended_ns)
        if self.tracing is not None and invocation.trace is not None:
            self._spans(invocation, timings)
        report = report_for(record, invocation)
        if self.recent is not None:
            failed = invocation.error.error_type if invocation.error is not None else ""
            trace_id = invocation.trace.trace_id if invocation.trace is not None else ""
            recent = Recent(invocation.request_id, record.version, ended_ns / 1e9, timings,
                            report.report_line(), failed, trace_id)  # fmt: skip
            self.recent.add(record.name, recent)
        self.logs.write(record.name, log_lines(record, invocation, report))
        if self.usage is not None:  # what the REPORT line bills, for mlambda cost
            self.usage.add(
                record.name,
                record.version,
                report.memory_mb,
                report.billed_ms,
                invocation.error is not None,
                invocation.cpu_ms,
                invocation.rows,
            )
        self._count(record.name, record.version, invocation)
        error = invocation.error
        if self.history is not None:  # for alarms and charts
            self.history.record(
                record.name,
                invocation.duration_ms,
                error is not None,
                invocation.init_ms is not None,
                invocation.rows,
            )
        if error is not None:
            # One line in serve's terminal per failed invocation; the function log has the rest.
            terminal.warning(
                "%s failed: %s: %s (request %s, %.0f ms)",
                record.name,
                error.error_type,
                _first_line(error.message),
                invocation.request_id,
                invocation.duration_ms,
            )

    def _count(self, name: str, version: str, invocation: Invocation) -> None:
        m = self.metrics
        series = m.series(name, version)
        error = invocation.error
        if error is None:
            series.successes.inc()
        else:
            outcome = "error"
            if error.error_type == "Sandbox.Timedout":
                outcome = "timeout"
                m.timeouts.labels(name, version).inc()
            m.invocations.labels(name, version, outcome).inc()
            m.errors.labels(name, version, m.error_type(name, version, error.error_type)).inc()
        series.duration.observe(invocation.duration_ms / 1000)
        series.queue_wait.observe(invocation.queue_wait_ms / 1000)
        series.batch_size.observe(invocation.batch_size)
        series.predictions.inc(invocation.rows)
        series.cpu.inc(invocation.cpu_ms / 1000)
        if invocation.init_ms is not None:
            m.cold_starts.labels(name, version, invocation.init_tier or "process").inc()
            m.init_duration.labels(name, version).observe(invocation.init_ms / 1000)

    def _spans(self, invocation: Invocation, timings: Timings) -> None:
        """The invocation's wait, instance start and handler run, under its call's span."""
        assert self.tracing is not None and invocation.trace is not None
        call = invocation.trace
        made = {"invoke": call}
        for planned in plan(timings):
            span = child_of(call)
            if planned.key == "handler":
                span = TraceContext(call.trace_id, invocation.handler_span, call.sampled)
            made[planned.key] = span
            failed = planned.key == "handler" and invocation.error is not None
            error = invocation.error.error_type if failed and invocation.error else ""
            self.tracing.emit(
                planned.name,
                span,
                made[planned.parent],
                planned.start_ns,
                planned.end_ns,
                attributes=planned.attributes,
                error=error,
            )
        self.tracing.emit_foreign(invocation.spans, call.trace_id)

    def output(self, record: FunctionRecord, text: str) -> None:
        self.logs.write(record.name, text.splitlines())

    def instance_started(self, record: FunctionRecord, tier: str) -> None:
        self.metrics.instance_starts.labels(record.name, record.version, tier).inc()

    def throttled(self, record: FunctionRecord, reason: str = "") -> None:
        self.metrics.throttles.labels(record.name, record.version).inc()
        if self.history is not None:
            self.history.count(record.name, "Throttles")
        terminal.warning("%s throttled: %s", record.name, reason or "429")

    def instances(self, record: FunctionRecord, counts: dict[str, int]) -> None:
        series = self.metrics.series(record.name, record.version)
        for state, gauge in series.instances.items():
            gauge.set(counts[state])
        series.concurrent.set(counts["busy"])
        provisioned = counts.get("provisioned", 0)
        labels = (record.name, record.version)
        gauge = self.metrics.provisioned_utilization
        if provisioned:
            gauge.labels(*labels).set(min(counts["busy"], provisioned) / provisioned)
            self._provisioned.add(labels)
        elif labels in self._provisioned:
            self._provisioned.discard(labels)
            gauge.remove(*labels)
