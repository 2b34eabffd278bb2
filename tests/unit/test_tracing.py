"""Spans made from a step's ids and times, with the real OpenTelemetry SDK; nothing of it
loaded when tracing is off."""

from __future__ import annotations

import subprocess
import sys

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mlambda.observe.tracing import Tracing, child_of, new_root
from mlambda.runtime.trace_header import TraceContext
from mlambda.settings import Settings

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _spans(tracing: Tracing, exporter: InMemorySpanExporter) -> list:
    tracing.processor.force_flush()
    return list(exporter.get_finished_spans())


def test_a_span_has_the_ids_parent_times_and_status_it_was_given():
    exporter = InMemorySpanExporter()
    tracing = Tracing(exporter)
    parent = TraceContext(TRACE, "00f067aa0ba902b7")
    span = child_of(parent)
    tracing.emit("invoke f", span, parent, 100, 250, kind="server", attributes={"a": 1},
                 error="Runtime.Error")  # fmt: skip
    [made] = _spans(tracing, exporter)
    assert (made.name, made.start_time, made.end_time) == ("invoke f", 100, 250)
    assert f"{made.context.trace_id:032x}" == TRACE
    assert f"{made.context.span_id:016x}" == span.span_id
    assert f"{made.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert made.kind.name == "SERVER" and made.attributes["a"] == 1
    assert made.status.status_code.name == "ERROR" and made.status.description == "Runtime.Error"
    assert made.resource.attributes["service.name"] == "mlambda"
    tracing.close()


def test_a_root_has_no_parent_and_an_unsampled_trace_makes_nothing():
    exporter = InMemorySpanExporter()
    tracing = Tracing(exporter)
    root = new_root()
    tracing.emit("root", root, None, 1, 2)
    tracing.emit("dropped", child_of(TraceContext(TRACE, "00f067aa0ba902b7", False)), None, 1, 2)
    assert [(s.name, s.parent) for s in _spans(tracing, exporter)] == [("root", None)]
    tracing.close()


def test_spans_from_an_instance_join_the_invocations_trace():
    exporter = InMemorySpanExporter()
    tracing = Tracing(exporter)
    tracing.emit_foreign(
        [{"name": "score", "span": "1111111111111111", "parent": "2222222222222222",
          "start": 5, "end": 9, "kind": "internal", "attributes": {"rows": [1, 2]},
          "error": ""}],
        TRACE,
    )  # fmt: skip
    [made] = _spans(tracing, exporter)
    assert f"{made.parent.span_id:016x}" == "2222222222222222"
    assert f"{made.context.trace_id:032x}" == TRACE and tuple(made.attributes["rows"]) == (1, 2)
    tracing.close()


def test_tracing_is_on_only_where_a_collector_is_named():
    from mlambda.observe.observability import make_tracing

    assert make_tracing(Settings()).enabled is False
    named = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert named.otel_endpoint == "http://127.0.0.1:4318"
    disabled = Settings.from_env(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert disabled.otel_endpoint == ""
    assert make_tracing(Settings(tracing="off", otel_endpoint="http://x:4318")).enabled is False


def test_off_loads_nothing_of_opentelemetry():
    code = (
        "import sys\n"
        "from mlambda.observe.observability import make_tracing\n"
        "from mlambda.observe.tracing import new_root\n"
        "from mlambda.settings import Settings\n"
        "tracing = make_tracing(Settings())\n"
        "tracing.emit('x', new_root(), None, 0, 1)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
