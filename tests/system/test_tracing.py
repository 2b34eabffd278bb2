"""Traces as an operator's collector receives them over OTLP/HTTP: one trace per invocation
with the gateway, access check, call, wait, instance start and handler spans, continuing the
caller's traceparent or X-Amzn-Trace-Id, across an asynchronous hop and a call from one function
to another (boto3 in the handler), with spans user code made with the OpenTelemetry API; and
with tracing off, the ids still reach the handler."""

from __future__ import annotations

import json
import time

import pytest

from tests.system.conftest import Server
from tests.system.otlp import Collector
from tests.system.test_async import _function

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SCORER = """
    import os
    from opentelemetry import trace

    tracer = trace.get_tracer("scorer")

    def handler(event, context):
        with tracer.start_as_current_span("score") as span:
            span.set_attribute("rows", 3)
        return {"env": os.environ.get("_X_AMZN_TRACE_ID"), "w3c": context.w3c()}
"""
CALLER = """
    import json
    import boto3

    def handler(event, context):
        aws = boto3.client("lambda", endpoint_url=event["url"], region_name="us-east-1",
                           aws_access_key_id="mlambda", aws_secret_access_key=event["key"])
        answer = aws.invoke(FunctionName="scorer", Payload=b"{}")
        return json.load(answer["Payload"])
"""


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory):
    collector = Collector()
    root = tmp_path_factory.mktemp("traced")
    server = Server(root / "data", env=collector.env()).start()
    server.deploy(_function(root, "scorer", SCORER))
    server.deploy(_function(root, "caller", CALLER, timeout_s=30))
    orders = _function(root, "orders", SCORER)
    with (orders / "mlambda.toml").open("a") as toml:
        toml.write('[[triggers]]\ntype = "rule"\npattern = {source = ["shop.orders"]}\n')
    server.deploy(orders)
    yield server, collector
    server.stop()
    collector.close()


def test_an_invoke_is_one_trace_continuing_the_callers_traceparent(traced):
    server, collector = traced
    answer = server.http("POST", "/v1/functions/scorer/invoke", content=b"{}",
                         headers={"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    spans = collector.trace(TRACE, {"POST /v1/functions/scorer/invoke", "auth", "invoke scorer",
                                    "handler", "score"})  # fmt: skip
    request = spans["POST /v1/functions/scorer/invoke"]
    assert request.parent == CALLER_SPAN and request.kind == 2  # SERVER
    assert request.attributes["http.response.status_code"] == 200
    assert spans["auth"].parent == request.id
    call = spans["invoke scorer"]
    assert call.parent == request.id and call.attributes["faas.invoked_name"] == "scorer"
    handler = spans["handler"]
    assert handler.parent == call.id and request.start <= call.start <= handler.start
    assert handler.end <= call.end <= request.end
    assert spans["score"].parent == handler.id and spans["score"].attributes["rows"] == 3
    assert {s.service for s in spans.values()} == {"mlambda"}
    # The handler saw its own span as the parent, in both forms.
    seen = answer.json()
    assert seen["env"] == f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={handler.id};Sampled=1"
    assert seen["w3c"] == {"traceparent": f"00-{TRACE}-{handler.id}-01"}


def test_a_cold_start_shows_where_the_instance_came_from(tmp_path):
    collector = Collector()
    server = Server(tmp_path / "data", env=collector.env()).start()
    try:
        server.deploy(_function(tmp_path, "cold", "def handler(event, context):\n    return 1\n"))
        xray = f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={CALLER_SPAN};Sampled=1"
        answer = server.http("POST", "/v1/functions/cold/invoke", content=b"{}",
                             headers={"X-Amzn-Trace-Id": xray})  # fmt: skip
        assert answer.status_code == 200
        spans = collector.trace(TRACE, {"instance start", "handler"})
        start = spans["instance start"]
        assert start.parent == spans["invoke cold"].id
        assert start.attributes["mlambda.tier"] in ("process", "base", "runtime", "template")
        # The parts it took (a template's fork has no import: it happened in the template).
        parts = [spans[p] for p in ("prepare", "fork", "import", "init") if p in spans]
        assert parts and all(p.parent == start.id for p in parts)
        assert all(start.start <= p.start <= p.end <= start.end for p in parts)
        assert spans["handler"].attributes["faas.coldstart"] is True
        assert spans["POST /v1/functions/cold/invoke"].parent == CALLER_SPAN
    finally:
        server.stop()
        collector.close()


def test_a_call_from_one_function_to_another_stays_in_the_callers_trace(traced):
    server, collector = traced
    event = {"url": server.url, "key": server.key}
    answer = server.http("POST", "/v1/functions/caller/invoke", json=event)
    assert answer.status_code == 200, answer.text
    trace_id = answer.json()["env"].split(";")[0].replace("Root=1-", "").replace("-", "")
    spans = collector.trace(trace_id, {"invoke caller", "invoke scorer", "score"})
    callee_request = spans["POST /2015-03-31/functions/scorer/invocations"]
    caller = spans["invoke caller"].id
    caller_handler = next(s for s in collector.spans if s.name == "handler" and s.parent == caller)
    assert callee_request.parent == caller_handler.id
    assert spans["invoke scorer"].parent == callee_request.id


def test_an_asynchronous_invoke_continues_its_trace_in_each_attempt(traced):
    server, collector = traced
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4737"
    sent = {"traceparent": f"00-{trace_id}-{CALLER_SPAN}-01"}
    accepted = server.http("POST", "/v1/functions/scorer/invoke", params={"mode": "async"},
                           content=b"{}", headers=sent)  # fmt: skip
    assert accepted.status_code == 202
    spans = collector.trace(trace_id, {"async attempt scorer", "async queue wait", "handler"})
    request = spans["POST /v1/functions/scorer/invoke"]
    attempt = spans["async attempt scorer"]
    assert attempt.parent == request.id and attempt.kind == 5  # CONSUMER
    assert attempt.attributes["faas.invocation_id"] == accepted.json()["invocation_id"]
    assert spans["async queue wait"].parent == attempt.id
    assert spans["invoke scorer"].parent == attempt.id
    assert spans["handler"].parent == spans["invoke scorer"].id


def test_a_failed_handler_marks_its_spans_as_errors(traced):
    server, collector = traced
    trace_id = "6bf92f3577b34da6a3ce929d0e0e4738"
    failed = server.http("POST", "/v1/functions/caller/invoke", content=b"{}",
                         headers={"traceparent": f"00-{trace_id}-{CALLER_SPAN}-01"})  # fmt: skip
    assert failed.status_code == 502  # the handler raised
    spans = collector.trace(trace_id, {"invoke caller", "handler"})
    assert spans["handler"].status == 2 and spans["invoke caller"].status == 2


def test_with_tracing_off_the_handler_still_continues_the_callers_trace(server, make_function):
    server.deploy(make_function("ids", SCORER))
    xray = f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={CALLER_SPAN};Sampled=1"
    seen = server.http("POST", "/v1/functions/ids/invoke", content=b"{}",
                       headers={"X-Amzn-Trace-Id": xray}).json()  # fmt: skip
    assert seen["env"].startswith(f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent=")
    assert CALLER_SPAN not in seen["env"]  # the handler's own span is the parent now
    fresh = server.http("POST", "/v1/functions/ids/invoke", content=b"{}").json()
    root = fresh["env"].split(";")[0]
    assert root.startswith("Root=1-") and abs(int(root[7:15], 16) - time.time()) < 60
    assert json.dumps(fresh["w3c"]).count("traceparent") == 1


def test_an_event_put_on_the_bus_runs_its_rules_function_in_the_callers_trace(traced):
    server, collector = traced
    trace_id = "7bf92f3577b34da6a3ce929d0e0e4739"
    entry = {"Source": "shop.orders", "DetailType": "placed", "Detail": "{}"}
    put = server.http("POST", "/v1/events", json={"Entries": [entry]},
                      headers={"traceparent": f"00-{trace_id}-{CALLER_SPAN}-01"})  # fmt: skip
    assert put.status_code == 200 and put.json()["FailedEntryCount"] == 0, put.text
    spans = collector.trace(trace_id, {"POST /v1/events", "async attempt orders", "handler"})
    assert spans["async attempt orders"].parent == spans["POST /v1/events"].id
    assert spans["invoke orders"].parent == spans["async attempt orders"].id
