"""What the platform sees with, built in one place: Prometheus metrics, function logs, usage
for cost, the in-memory metric history, and the alarms evaluated over it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mlambda.errors import InvalidRequest, MlambdaError
from mlambda.observe.alarm_monitor import AlarmMonitor
from mlambda.observe.alarm_rule import AlarmRule, rule_from_dict
from mlambda.observe.alarm_store import AlarmStore
from mlambda.observe.history import MetricHistory
from mlambda.observe.logs import LogSink
from mlambda.observe.metrics import Metrics
from mlambda.observe.observer import PlatformObserver
from mlambda.observe.recent import RecentInvocations
from mlambda.observe.tracing import Tracing, child_of
from mlambda.observe.usage import UsageLedger
from mlambda.pool.invocation import Invocation
from mlambda.runtime.trace_header import TraceContext
from mlambda.security.crypto import Envelope
from mlambda.settings import Settings

log = logging.getLogger("mlambda")
RETENTION_SWEEP_S = 600


def make_tracing(settings: Settings) -> Tracing:
    """On where an OTLP endpoint is configured (``--tracing auto``) or asked for (``on``)."""
    if settings.tracing == "off" or (settings.tracing == "auto" and not settings.otel_endpoint):
        return Tracing.off()
    try:
        return Tracing()
    except ImportError as exc:
        raise InvalidRequest(
            f"tracing needs the OpenTelemetry SDK and its OTLP exporter ({exc.name} is missing): "
            "pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http"
        ) from None


def rules_in_file(path: Path) -> list[AlarmRule]:
    """The ``[[alarm]]`` tables of a TOML file (``--alarms-file``); a clear error otherwise."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidRequest(f"alarms file {path}: {exc}") from None
    unknown = sorted(set(data) - {"alarm"})
    if unknown:
        raise InvalidRequest(f"alarms file {path}: unknown table(s) {unknown}; use [[alarm]]")
    rules = []
    for index, entry in enumerate(data.get("alarm", [])):
        try:
            rules.append(rule_from_dict(entry))
        except InvalidRequest as exc:
            raise InvalidRequest(f"alarms file {path}, alarm #{index + 1}: {exc}") from None
    return rules


class Observability:
    def __init__(
        self,
        settings: Settings,
        engine: sa.engine.Engine,
        envelope: Envelope,
        log_dir: Path,
        notify_function: Callable[[str, bytes], Awaitable[Any]],
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.logs = LogSink(log_dir, settings.max_log_bytes)
        self.usage = UsageLedger(engine)  # what mlambda cost reports
        self.history = MetricHistory()  # what alarms and the console's charts read
        self.tracing = make_tracing(settings)
        self.recent = RecentInvocations()  # the console's recent invocations and waterfalls
        self.observer = PlatformObserver(
            self.logs, self.metrics, self.usage, self.history, self.tracing, self.recent
        )
        self.alarms = AlarmStore(engine, envelope)
        self.monitor = AlarmMonitor(
            self.alarms, self.history, notify_function, region=settings.region
        )
        self._sweeping: asyncio.Task[None] | None = None
        # Checked now: a broken alarms file stops serve before it listens.
        self._file_rules = (
            rules_in_file(settings.alarms_file) if settings.alarms_file is not None else []
        )

    async def start(self) -> None:
        for rule in self._file_rules:
            await asyncio.to_thread(self.alarms.put, rule, "settings")
        await self.monitor.start()
        if self.settings.log_retention_days > 0:
            self._sweeping = asyncio.get_running_loop().create_task(self._sweep_logs())

    async def _sweep_logs(self) -> None:
        """Log lines past the retention go, checked every few minutes."""
        while True:
            before = time.time() - self.settings.log_retention_days * 86400
            try:
                await self.logs.expire(before)
            except OSError as exc:
                log.warning("log retention: %s", exc)
            await asyncio.sleep(RETENTION_SWEEP_S)

    async def stop(self) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
            await asyncio.gather(self._sweeping, return_exceptions=True)
        await self.monitor.stop()
        await asyncio.to_thread(self.tracing.close)
        self.logs.close()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.usage.write)

    async def traced(
        self,
        name: str,
        parent: TraceContext | None,
        call: Callable[[TraceContext], Awaitable[Invocation]],
    ) -> Invocation:
        """Run ``call`` as the span ``invoke NAME`` (a child of ``parent``, or a new trace's
        root): its context is handed on, so the pool's spans and the handler hang under it."""
        span = child_of(parent)
        if not self.tracing.enabled:
            return await call(span)
        started = time.time_ns()
        try:
            invocation = await call(span)
        except MlambdaError as exc:
            self._invoked(name, span, parent, started, exc.error_type, "")
            raise
        error = invocation.error.error_type if invocation.error is not None else ""
        self._invoked(name, span, parent, started, error, invocation.version)
        return invocation

    def _invoked(
        self, name: str, span: TraceContext, parent: TraceContext | None, started: int,
        error: str, version: str,
    ) -> None:  # fmt: skip
        attributes = {"faas.invoked_name": name, "faas.invoked_provider": "mlambda"}
        if version:
            attributes["faas.version"] = version
        self.tracing.emit(f"invoke {name}", span, parent, started, time.time_ns(),
                          attributes=attributes, error=error)  # fmt: skip

    def dead_letter(self, function: str, reason: str) -> None:
        """An asynchronous invocation ended without success (failed or expired)."""
        self.metrics.dead_letters.labels(function, reason).inc()
        self.history.count(function, "DeadLetters")

    def forget(self, function: str) -> None:
        self.metrics.forget(function)
        self.history.forget(function)
        self.recent.forget(function)
