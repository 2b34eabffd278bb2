"""/fn/{name}/{path}: the function as a web endpoint, with API Gateway's payload 2.0 event."""

from __future__ import annotations

import base64

import pytest

WEB = """
    import base64, json

    def handler(event, context):
        path = event["rawPath"]
        if path == "/echo":
            return {"statusCode": 200, "headers": {"content-type": "application/json"},
                    "body": json.dumps(event)}
        if path == "/created":
            return {"statusCode": 201, "headers": {"x-made-by": "handler"},
                    "cookies": ["a=1; Path=/", "b=2"], "body": "made"}
        if path == "/binary":
            png = base64.b64encode(b"\\x89PNG\\x00\\xff").decode()
            return {"statusCode": 200, "headers": {"content-type": "image/png"},
                    "isBase64Encoded": True, "body": png}
        if path == "/bare":
            return {"just": "a dict"}
        if path == "/fail":
            raise KeyError("boom")
        return {"statusCode": 404, "body": "no such page"}
"""


@pytest.fixture(scope="module")
def web(shared_server, tmp_path_factory):
    from tests.conftest import write_function

    shared_server.deploy(write_function(tmp_path_factory.mktemp("fn"), "web", WEB))
    return shared_server


def test_request_becomes_an_http_api_v2_event(web):
    response = web.http(
        "POST",
        "/fn/web/echo?x=1&x=2&y=z",
        content=b'{"hello": "world"}',
        headers={"Content-Type": "application/json", "Cookie": "session=abc; theme=dark"},
    )
    assert response.status_code == 200
    event = response.json()
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/echo"
    assert event["rawQueryString"] == "x=1&x=2&y=z"
    assert event["queryStringParameters"] == {"x": "1,2", "y": "z"}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert event["headers"]["content-type"] == "application/json"
    assert "authorization" not in event["headers"]  # the platform key stays with the platform
    assert event["body"] == '{"hello": "world"}'
    assert event["isBase64Encoded"] is False


def test_binary_request_body_arrives_base64_encoded(web):
    response = web.http(
        "PUT",
        "/fn/web/echo",
        content=b"\x00\xff\x10",
        headers={"Content-Type": "application/octet-stream"},
    )
    event = response.json()
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff\x10"


def test_handler_response_becomes_the_http_response(web):
    created = web.http("GET", "/fn/web/created")
    assert created.status_code == 201
    assert created.headers["x-made-by"] == "handler"
    assert created.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2"]
    assert created.text == "made"

    binary = web.http("GET", "/fn/web/binary")
    assert binary.headers["content-type"] == "image/png"
    assert binary.content == b"\x89PNG\x00\xff"

    missing = web.http("GET", "/fn/web/elsewhere")
    assert missing.status_code == 404 and missing.text == "no such page"


def test_a_bare_return_value_is_a_200_json_body(web):
    bare = web.http("GET", "/fn/web/bare")
    assert bare.status_code == 200
    assert bare.headers["content-type"] == "application/json"
    assert bare.json() == {"just": "a dict"}


def test_a_failing_handler_is_a_502(web):
    failed = web.http("GET", "/fn/web/fail")
    assert failed.status_code == 502
    assert failed.json()["errorType"] == "KeyError"
