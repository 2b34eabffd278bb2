"""The Runtime API an instance serves its bootstrap: paths, headers, error shapes, and the
one-call-at-a-time state, over a real loopback socket."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from mlambda.runtime import protocol
from mlambda.runtime.runtime_api import (
    RuntimeApi,
    error_payload,
    invocation_headers,
    route,
    trace_id,
)

NEXT = "/2018-06-01/runtime/invocation/next"


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", NEXT, ("next", "")),
        ("GET", NEXT + "?x=1", ("next", "")),
        ("POST", "/2018-06-01/runtime/invocation/abc-1/response", ("response", "abc-1")),
        ("POST", "/2018-06-01/runtime/invocation/abc-1/error", ("error", "abc-1")),
        ("POST", "/2018-06-01/runtime/init/error", ("init_error", "")),
        ("POST", NEXT, ("", "")),
        ("GET", "/2018-06-01/runtime/invocation/abc-1/response", ("", "")),
        ("POST", "/2018-06-01/runtime/invocation/a/b/response", ("", "")),
        ("POST", "/2020-01-01/runtime/init/error", ("", "")),
    ],
)
def test_each_path_of_the_runtime_api_is_routed_with_its_request_id(method, path, expected):
    assert route(method, path) == expected


def test_an_invocation_carries_lambdas_headers():
    request = protocol.Invoke(
        request_id="r-1", payload=b"{}", deadline_ms=1_700_000_003_000, client_context='{"a":1}'
    )
    headers = invocation_headers(request, "arn:aws:lambda:r:0:function:f", "Root=1-x")
    assert headers == {
        "Content-Type": "application/json",
        "Lambda-Runtime-Aws-Request-Id": "r-1",
        "Lambda-Runtime-Deadline-Ms": "1700000003000",
        "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:r:0:function:f",
        "Lambda-Runtime-Trace-Id": "Root=1-x",
        "Lambda-Runtime-Client-Context": '{"a":1}',
    }
    bare = protocol.Invoke(request_id="r-2", payload=b"", deadline_ms=1)
    assert "Lambda-Runtime-Client-Context" not in invocation_headers(bare, "arn", "t")


def test_a_trace_id_is_an_xray_header():
    trace = trace_id(0x5BEF4DE7, bytes(range(20)))
    assert trace == "Root=1-5bef4de7-000102030405060708090a0b;Parent=0c0d0e0f10111213;Sampled=0"


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [
        (
            b'{"errorMessage": "no", "errorType": "ValueError", "stackTrace": ["x"]}',
            "Runtime.Ignored",
            {"errorMessage": "no", "errorType": "ValueError", "stackTrace": ["x"]},
        ),
        (
            b'{"errorMessage": "no"}',
            "Custom.Kind",
            {"errorMessage": "no", "errorType": "Custom.Kind"},
        ),
        (b"plain words", "", {"errorMessage": "plain words", "errorType": "Unhandled"}),
        (b"", "", {"errorMessage": "", "errorType": "Unhandled"}),
        (b"[1, 2]", "", {"errorMessage": "[1, 2]", "errorType": "Unhandled"}),
    ],
)
def test_an_error_is_lambdas_shape_whatever_the_bootstrap_posts(body, header, expected):
    assert error_payload(body, header, "Unhandled") == expected


@pytest.fixture
def api():
    served = RuntimeApi(max_response_bytes=64)
    served.start()
    yield served
    served.close()


def _call(api: RuntimeApi, method: str, path: str, body: bytes | None = None, **headers: str):
    request = urllib.request.Request(
        f"http://{api.address}{path}", data=body, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _next(api: RuntimeApi, request_id: str, payload: bytes = b'{"n": 1}'):
    api.offer(protocol.Invoke(request_id=request_id, payload=payload, deadline_ms=5), "arn:f")
    return _call(api, "GET", NEXT)


def test_the_first_next_makes_the_instance_ready_and_gets_the_offered_event(api):
    taken = []
    waiting = threading.Thread(target=lambda: taken.append(_call(api, "GET", NEXT)))
    waiting.start()
    assert api.events.get(timeout=5).kind == "ready"
    api.offer(protocol.Invoke(request_id="r-1", payload=b'{"n": 1}', deadline_ms=5), "arn:f")
    waiting.join(5)
    status, headers, body = taken[0]
    assert (status, body) == (200, b'{"n": 1}')
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "r-1"
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == "arn:f"
    path = "/2018-06-01/runtime/invocation/r-1/response"
    assert _call(api, "POST", path, b'{"ok": true}')[::2] == (202, b'{"status": "OK"}')
    answered = api.events.get(timeout=5)
    assert (answered.kind, answered.request_id, answered.body) == (
        "response",
        "r-1",
        b'{"ok": true}',
    )


def test_answers_to_another_invocation_or_twice_are_refused(api):
    _next(api, "r-1")
    api.events.get(timeout=5)  # ready
    wrong = _call(api, "POST", "/2018-06-01/runtime/invocation/r-0/response", b"{}")
    assert (wrong[0], json.loads(wrong[2])["errorType"]) == (400, "InvalidRequestID")
    again = _call(api, "GET", NEXT)
    assert (again[0], json.loads(again[2])["errorType"]) == (403, "InvalidStateTransition")
    error = b'{"errorMessage": "bad", "errorType": "E"}'
    assert _call(api, "POST", "/2018-06-01/runtime/invocation/r-1/error", error)[0] == 202
    assert api.events.get(timeout=5).error == {"errorMessage": "bad", "errorType": "E"}
    twice = _call(api, "POST", "/2018-06-01/runtime/invocation/r-1/response", b"{}")
    assert twice[0] == 400
    assert _call(api, "POST", "/2018-06-01/runtime/init/error", b"{}")[0] == 403
    unknown = _call(api, "GET", "/2018-06-01/runtime/elsewhere")
    assert (unknown[0], json.loads(unknown[2])["errorType"]) == (404, "NotFound")


def test_a_response_over_the_limit_is_413_and_fails_the_invocation(api):
    _next(api, "r-1")
    api.events.get(timeout=5)  # ready
    status, _, body = _call(api, "POST", "/2018-06-01/runtime/invocation/r-1/response", b"x" * 65)
    assert (status, json.loads(body)["errorType"]) == (413, "RequestEntityTooLarge")
    failed = api.events.get(timeout=5)
    assert (failed.kind, failed.error["errorType"]) == ("error", "Function.ResponseSizeTooLarge")
    assert _next(api, "r-2")[0] == 200  # the same connection's client carries on


def test_an_init_error_before_the_first_next_is_reported(api):
    status, _, _ = _call(
        api,
        "POST",
        "/2018-06-01/runtime/init/error",
        b"no config",
        **{"Lambda-Runtime-Function-Error-Type": "Runtime.NoConfig"},
    )
    assert status == 202
    reported = api.events.get(timeout=5)
    assert reported.kind == "init_error"
    assert reported.error == {"errorMessage": "no config", "errorType": "Runtime.NoConfig"}
