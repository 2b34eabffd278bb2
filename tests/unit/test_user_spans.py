"""An instance's side of tracing: _X_AMZN_TRACE_ID per invocation, and the spans user code
makes with the OpenTelemetry API collected under the handler's span (in a fresh interpreter:
the tracer provider is process-wide)."""

from __future__ import annotations

import json
import subprocess
import sys

CODE = """
import json, os, sys
from mlambda.runtime.user_spans import InvocationTrace

traced = InvocationTrace()
quiet = traced.begin("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=53995c3f42cd8ad8;Sampled=1")
before = [traced.end(quiet), os.environ["_X_AMZN_TRACE_ID"]]

from opentelemetry import trace  # the handler's code imports the API
tracer = trace.get_tracer("handler")
header = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=53995c3f42cd8ad8;Sampled=1"
token = traced.begin(header)
with tracer.start_as_current_span("outer"):
    with tracer.start_as_current_span("inner") as span:
        span.set_attribute("rows", 3)
spans = traced.end(token)
traced.begin("")
print(json.dumps({"before": before, "spans": spans,
                  "after": os.environ.get("_X_AMZN_TRACE_ID"), "next": traced.end(None)}))
"""


def test_user_spans_hang_under_the_handlers_span_and_the_header_is_in_the_environment():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout)
    assert seen["before"][0] == []  # no OpenTelemetry imported yet: nothing collected
    assert seen["before"][1].startswith("Root=1-4bf92f35-")
    inner, outer = seen["spans"]
    assert (outer["name"], outer["parent"]) == ("outer", "53995c3f42cd8ad8")
    assert (inner["name"], inner["parent"]) == ("inner", outer["span"])
    assert inner["attributes"] == {"rows": 3} and inner["end"] >= inner["start"]
    assert seen["after"] is None and seen["next"] == []
