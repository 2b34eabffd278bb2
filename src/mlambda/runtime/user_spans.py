"""Spans a handler makes with the OpenTelemetry API, carried back to the platform with its
result, which exports them in the invocation's trace under the handler's span.

Nothing here runs unless the function's code imported ``opentelemetry`` and the SDK can be
imported: the instance then gets a tracer provider that keeps finished spans in memory. Should
the code have set a provider of its own, that one stays, and exports as it was told to.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from mlambda.runtime.trace_header import parse_xray

# Spans kept per invocation at most (a loop making spans must not swell the result frame).
MAX_SPANS = 256


class UserSpans:
    def __init__(self) -> None:
        self._finished: list[Any] = []
        self._lock = threading.Lock()  # spans may end on the handler's own threads

    @classmethod
    def install(cls) -> UserSpans | None:
        """A collector, if the code uses OpenTelemetry and no provider of its own is set."""
        if "opentelemetry" not in sys.modules:
            return None
        try:
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        except ImportError:  # the API alone: its spans are no-ops anyway
            return None
        collector = cls()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_Exporter(collector)))  # type: ignore[arg-type]
        trace.set_tracer_provider(provider)
        if trace.get_tracer_provider() is not provider:
            return None
        return collector

    def begin(self, header: str) -> object | None:
        """Make the handler's span (named by the X-Ray ``header``) the current parent."""
        context = parse_xray(header) if header else None
        if context is None or not context.span_id:
            return None
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if context.sampled else 0)
        parent = trace.SpanContext(
            int(context.trace_id, 16), int(context.span_id, 16), is_remote=True, trace_flags=flags
        )
        active = trace.set_span_in_context(trace.NonRecordingSpan(parent))
        return otel_context.attach(active)

    def end(self, token: object | None) -> list[dict[str, Any]]:
        """The spans that finished since ``begin``, as the result frame carries them."""
        if token is not None:
            from opentelemetry import context as otel_context

            otel_context.detach(token)  # type: ignore[arg-type]
        with self._lock:
            finished, self._finished = self._finished[:MAX_SPANS], []
        return [_encoded(span) for span in finished]

    def add(self, spans: Any) -> None:
        with self._lock:
            self._finished.extend(spans)


class _Exporter:
    """Hands finished spans to the collector (a SpanExporter by duck typing: the SDK only calls
    export and shutdown)."""

    def __init__(self, collector: UserSpans) -> None:
        self.collector = collector

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.collector.add(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _encoded(span: Any) -> dict[str, Any]:
    parent = span.parent
    status = span.status
    return {
        "name": span.name,
        "span": f"{span.context.span_id:016x}",
        "parent": f"{parent.span_id:016x}" if parent is not None else "",
        "start": span.start_time,
        "end": span.end_time,
        "kind": span.kind.name.lower(),
        "attributes": {
            k: list(v) if isinstance(v, tuple) else v for k, v in (span.attributes or {}).items()
        },
        "error": (status.description or "error") if status.status_code.name == "ERROR" else "",
    }


class InvocationTrace:
    """What an instance does with each invocation's trace header: ``_X_AMZN_TRACE_ID`` in the
    environment (the AWS SDK sends it on, so a call to another function joins the trace), and
    the collector of user spans once the code has imported OpenTelemetry."""

    def __init__(self) -> None:
        self.spans: UserSpans | None = None
        self._looked = False

    def begin(self, header: str) -> object | None:
        if header:
            os.environ["_X_AMZN_TRACE_ID"] = header
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        if not self._looked and "opentelemetry" in sys.modules:
            self._looked = True  # once: an import done in init or in the first calls
            self.spans = UserSpans.install()
        return self.spans.begin(header) if self.spans is not None else None

    def end(self, token: object | None) -> list[dict[str, Any]]:
        return self.spans.end(token) if self.spans is not None else []
