"""Function URLs: requests become payload 2.0 events, and return values become responses."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from mlambda.gateway.function_url import build_event, parse_result


def _event(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "method": "GET",
        "raw_path": "/",
        "raw_query": "",
        "headers": [],
        "body": b"",
        "source_ip": "203.0.113.7",
        "function_name": "echo",
        "now": 1_700_000_000.25,
    }
    return build_event(**{**request, **overrides})


def test_event_is_an_http_api_payload_2_0():
    event = _event()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["requestContext"]["stage"] == "$default"
    assert event["requestContext"]["http"]["protocol"] == "HTTP/1.1"


def test_event_keeps_the_raw_path_and_query_string():
    event = _event(raw_path="/users/42/a%20b", raw_query="q=a%20b&x=1")
    assert event["rawPath"] == "/users/42/a%20b"
    assert event["rawQueryString"] == "q=a%20b&x=1"


def test_request_context_carries_method_path_and_source_ip():
    event = _event(method="POST", raw_path="/predict", headers=[("User-Agent", "curl/8")])
    http = event["requestContext"]["http"]
    assert http["method"] == "POST"
    assert http["path"] == "/predict"
    assert http["sourceIp"] == "203.0.113.7"
    assert http["userAgent"] == "curl/8"


def test_request_context_takes_the_domain_from_the_host_header():
    assert _event(headers=[("Host", "fn.example:8080")])["requestContext"]["domainName"] == (
        "fn.example:8080"
    )
    assert _event()["requestContext"]["domainName"] == "localhost"


def test_request_context_times_come_from_now():
    context = _event(now=0.5)["requestContext"]
    assert context["time"] == "01/Jan/1970:00:00:00 +0000"
    assert context["timeEpoch"] == 500


def test_every_event_gets_its_own_request_id():
    assert _event()["requestContext"]["requestId"] != _event()["requestContext"]["requestId"]


@pytest.mark.parametrize(
    ("raw_query", "parameters"),
    [
        ("a=1", {"a": "1"}),
        ("a=1&a=2", {"a": "1,2"}),
        ("a=1&b=2&a=3", {"a": "1,3", "b": "2"}),
        ("q=a%20b&r=x+y", {"q": "a b", "r": "x y"}),
        ("flag", {"flag": ""}),
        ("empty=", {"empty": ""}),
    ],
)
def test_query_string_parameters_join_repeated_keys_with_commas(raw_query, parameters):
    assert _event(raw_query=raw_query)["queryStringParameters"] == parameters


def test_no_query_string_means_no_query_string_parameters():
    assert "queryStringParameters" not in _event()


def test_headers_are_lowercased_and_repeated_ones_comma_joined():
    headers = [("Content-Type", "text/plain"), ("X-Tag", "a"), ("x-tag", "b")]
    assert _event(headers=headers)["headers"] == {"content-type": "text/plain", "x-tag": "a,b"}


def test_cookies_are_split_out_of_the_cookie_header():
    event = _event(headers=[("Cookie", "session=abc; theme=dark"), ("cookie", "lang=en;")])
    assert event["cookies"] == ["session=abc", "theme=dark", "lang=en"]
    assert "cookie" not in event["headers"]


def test_no_cookie_header_means_no_cookies_key():
    assert "cookies" not in _event(headers=[("Accept", "*/*")])


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/html; charset=utf-8", "application/json", "application/xml", None],
)
def test_a_text_body_is_passed_as_text(content_type):
    headers = [("Content-Type", content_type)] if content_type else []
    event = _event(method="POST", headers=headers, body="héllo".encode())
    assert event["body"] == "héllo"
    assert event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/octet-stream", b"\x00\x01\xff"),
        ("image/png", b"\x89PNG\r\n"),
        ("application/octet-stream", b"plain ascii"),
        ("text/plain", b"\xff\xfe not utf-8"),
        (None, b"\xff\xfe not utf-8"),
    ],
)
def test_a_binary_body_is_base64_encoded(content_type, body):
    headers = [("Content-Type", content_type)] if content_type else []
    event = _event(method="POST", headers=headers, body=body)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_an_empty_body_has_no_body_key():
    event = _event()
    assert "body" not in event
    assert event["isBase64Encoded"] is False


def test_the_event_is_json_serializable():
    event = _event(
        method="PUT",
        raw_query="a=1",
        headers=[("Cookie", "a=1"), ("Content-Type", "application/octet-stream")],
        body=b"\x00",
    )
    assert json.loads(json.dumps(event)) == event


def _result(value: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    result = parse_result(json.dumps(value).encode())
    return result.status, result.headers, result.body


def test_a_response_object_gives_status_headers_and_body():
    status, headers, body = _result(
        {"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-A": "1"}, "body": "made"}
    )
    assert status == 201
    assert headers == [("Content-Type", "text/plain"), ("X-A", "1")]
    assert body == b"made"


def test_a_base64_encoded_body_is_decoded():
    encoded = base64.b64encode(b"\x00\xff").decode()
    _, _, body = _result({"statusCode": 200, "body": encoded, "isBase64Encoded": True})
    assert body == b"\x00\xff"


def test_cookies_become_one_set_cookie_header_each():
    _, headers, _ = _result({"statusCode": 200, "cookies": ["a=1; Path=/", "b=2"]})
    assert [v for k, v in headers if k == "set-cookie"] == ["a=1; Path=/", "b=2"]


def test_multi_value_headers_give_one_header_per_value():
    _, headers, _ = _result({"statusCode": 200, "multiValueHeaders": {"X-Many": ["1", "2"]}})
    assert [v for k, v in headers if k == "X-Many"] == ["1", "2"]


def test_a_response_without_content_type_is_json():
    _, headers, _ = _result({"statusCode": 204})
    assert headers == [("content-type", "application/json")]


@pytest.mark.parametrize("name", ["Content-Type", "content-type", "CONTENT-TYPE"])
def test_a_given_content_type_is_kept_and_not_doubled(name):
    _, headers, _ = _result({"statusCode": 200, "headers": {name: "text/csv"}})
    assert headers == [(name, "text/csv")]


def test_a_missing_or_null_body_is_empty():
    assert _result({"statusCode": 204})[2] == b""
    assert _result({"statusCode": 204, "body": None})[2] == b""


def test_a_body_that_is_not_a_string_is_sent_as_json():
    _, _, body = _result({"statusCode": 200, "body": {"a": [1, 2]}})
    assert json.loads(body) == {"a": [1, 2]}


def test_a_numeric_string_status_code_is_accepted():
    assert _result({"statusCode": "404"})[0] == 404


@pytest.mark.parametrize(
    "raw", [b'{"label": "cat", "score": 0.9}', b"[1, 2, 3]", b'"hello"', b"42", b"null", b"{}"]
)
def test_any_other_return_value_is_a_200_with_the_raw_json(raw):
    result = parse_result(raw)
    assert result.status == 200
    assert result.headers == [("content-type", "application/json")]
    assert result.body == raw
