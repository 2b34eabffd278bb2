"""Spans of the platform's work, exported with the OpenTelemetry SDK over OTLP (the standard
``OTEL_EXPORTER_OTLP_*`` variables configure the exporter).

Each layer knows when its step began and ended and passes a ``TraceContext`` (runtime/
trace_header.py) down; a span is made once the step is over, with its ids, parent and times
given (the SDK's ``ReadableSpan``, handed to its batch processor). So with tracing off nothing
of OpenTelemetry is imported and no span object exists: a call costs the ids Lambda hands every
invocation anyway (``_X_AMZN_TRACE_ID``).

    tracing = Tracing.for_settings(settings)   # off unless an OTLP endpoint is configured
    span = child_of(parent)
    ...
    tracing.emit("invoke hello", span, parent, started_ns, time.time_ns())
"""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlambda.runtime.trace_header import TraceContext, new_trace_id

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter

KINDS = ("internal", "server", "client", "producer", "consumer")
# The span of the HTTP request being served (tracing on): events it accepts without being
# told their parent (an S3 notification, PutEvents matched by rules) continue it.
REQUEST_SPAN: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "mlambda_request_span", default=None
)
Attributes = Mapping[str, str | bool | int | float | Sequence[str]]


def new_span_id() -> str:
    return os.urandom(8).hex()


def new_root(sampled: bool = True) -> TraceContext:
    return TraceContext(new_trace_id(time.time(), os.urandom(12)), new_span_id(), sampled)


def child_of(parent: TraceContext | None) -> TraceContext:
    """A new span's context: in the parent's trace, or the root of a new one."""
    if parent is None:
        return new_root()
    return TraceContext(parent.trace_id, new_span_id(), parent.sampled)


class Tracing:
    """Off: ``enabled`` is False and ``emit`` does nothing. On: spans go to ``exporter`` (an
    OTLP/HTTP exporter configured by the environment when none is given) in batches."""

    def __init__(
        self, exporter: SpanExporter | None = None, *, service_name: str = "mlambda"
    ) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        from opentelemetry import trace
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from mlambda import __version__

        self.enabled = True
        resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES apply
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": service_name}))
        self.resource = resource
        self.processor: SpanProcessor = BatchSpanProcessor(exporter)
        # Looked up once: a span is made per step of every call.
        self._readable = ReadableSpan
        self._kinds = {kind: getattr(trace.SpanKind, kind.upper()) for kind in KINDS}
        self._scope = InstrumentationScope("mlambda", __version__)
        self._ok = trace.Status(trace.StatusCode.UNSET)
        self._status = trace.Status
        self._error = trace.StatusCode.ERROR

    @classmethod
    def off(cls) -> Tracing:
        tracing = cls.__new__(cls)
        tracing.enabled = False
        return tracing

    def emit(
        self,
        name: str,
        span: TraceContext,
        parent: TraceContext | None,
        start_ns: int,
        end_ns: int,
        *,
        kind: str = "internal",
        attributes: Attributes | None = None,
        error: str = "",
    ) -> None:
        """One finished span: ``span`` holds its ids, ``parent`` its parent's (None: a root)."""
        if not self.enabled or not span.sampled:
            return
        readable = self._readable(
            name,
            context=_context(span),
            parent=_context(parent) if parent and parent.span_id else None,
            resource=self.resource,
            attributes=dict(attributes) if attributes else {},
            kind=self._kinds[kind],
            status=self._status(self._error, error) if error else self._ok,
            start_time=start_ns,
            end_time=max(end_ns, start_ns),
            instrumentation_scope=self._scope,
        )
        self.processor.on_end(readable)

    def emit_foreign(self, spans: Sequence[Mapping[str, Any]], trace_id: str) -> None:
        """Spans user code made inside an instance (runtime/user_spans.py), in ``trace_id``."""
        for item in spans:
            parent = item.get("parent", "")
            self.emit(
                str(item["name"]),
                TraceContext(trace_id, str(item["span"])),
                TraceContext(trace_id, str(parent)) if parent else None,
                int(item["start"]),
                int(item["end"]),
                kind=str(item.get("kind", "internal")),
                attributes=item.get("attributes") or {},
                error=str(item.get("error", "")),
            )

    def close(self) -> None:
        """Export what is buffered, then stop."""
        if self.enabled:
            self.processor.shutdown()


def _context(context: TraceContext) -> Any:
    from opentelemetry.trace import SpanContext, TraceFlags

    flags = TraceFlags(TraceFlags.SAMPLED if context.sampled else TraceFlags.DEFAULT)
    return SpanContext(int(context.trace_id, 16), int(context.span_id, 16), False, flags)
