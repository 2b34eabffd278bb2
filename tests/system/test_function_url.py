"""/fn/{name}/{path}: the function as a web endpoint, with API Gateway's payload 2.0 event."""

from __future__ import annotations

import base64
import json

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


PUBLIC = """
    def handler(event, context):
        return {"statusCode": 200, "headers": {"access-control-allow-origin": "https://mine.example"},
                "body": event["requestContext"]["http"]["method"] + " " + event["rawPath"]}
"""


def _url_function(root, name: str, url: str):  # type: ignore[no-untyped-def]
    from tests.conftest import write_function

    directory = write_function(root, name, PUBLIC)
    with (directory / "mlambda.toml").open("a") as toml:
        toml.write(url)
    return directory


@pytest.fixture(scope="module")
def urls(shared_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("urls")
    cors = (
        "[function.url.cors]\n"
        'allow_origins = ["https://app.example.com"]\n'
        'allow_methods = ["GET", "POST"]\n'
        'allow_headers = ["content-type"]\n'
        'expose_headers = ["x-mlambda-request-id"]\n'
        "max_age = 300\n"
    )
    shared_server.deploy(
        _url_function(root, "public", '[function.url]\nauth_type = "NONE"\n' + cors)
    )
    shared_server.deploy(_url_function(root, "keyed", cors))
    shared_server.deploy(_url_function(root, "plain", ""))
    return shared_server


def _anonymous(server, method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
    import httpx

    return httpx.request(method, server.url + path, timeout=30, **kwargs)


def test_a_public_url_answers_without_a_key_and_keeps_the_callers_authorization(urls):
    response = _anonymous(urls, "GET", "/fn/public/hello")
    assert response.status_code == 200 and response.text == "GET /hello"
    # A caller's own Authorization reaches the function of a public URL (it is not ours).
    assert _anonymous(urls, "POST", "/fn/public/x", headers={"Authorization": "Bearer t"}).text == (
        "POST /x"
    )


def test_a_url_without_auth_type_none_refuses_a_request_without_a_key(urls):
    for name in ("keyed", "plain"):
        response = _anonymous(urls, "GET", f"/fn/{name}/hello")
        assert response.status_code == 401, name
        assert urls.http("GET", f"/fn/{name}/hello").text == "GET /hello"


def test_a_scoped_invoke_key_opens_its_own_functions_url_only(urls):
    created = urls.cli("keys", "create", "url-caller", "--scope", "invoke:keyed", "--json")
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert _anonymous(urls, "GET", "/fn/keyed/a", headers=auth).status_code == 200
    assert _anonymous(urls, "GET", "/fn/plain/a", headers=auth).status_code == 403


@pytest.mark.parametrize("name", ["public", "keyed"])
def test_a_cors_preflight_is_answered_as_configured_without_a_key(urls, name):
    asked = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    response = _anonymous(urls, "OPTIONS", f"/fn/{name}/predict", headers=asked)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert response.headers["access-control-allow-methods"] == "GET, POST"
    assert response.headers["access-control-allow-headers"] == "content-type"
    assert response.headers["access-control-max-age"] == "300"
    refused = _anonymous(
        urls, "OPTIONS", f"/fn/{name}/predict", headers={**asked, "Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in refused.headers


def test_cors_headers_on_responses_replace_the_functions_own(urls):
    response = _anonymous(
        urls, "GET", "/fn/public/x", headers={"Origin": "https://app.example.com"}
    )
    assert response.headers.get_list("access-control-allow-origin") == ["https://app.example.com"]
    assert response.headers["access-control-expose-headers"] == "x-mlambda-request-id"
    other = _anonymous(urls, "GET", "/fn/public/x", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_without_cors_settings_a_preflight_goes_to_the_function_with_a_key(urls):
    asked = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    assert _anonymous(urls, "OPTIONS", "/fn/plain/x", headers=asked).status_code == 401
    response = urls.http("OPTIONS", "/fn/plain/x", headers=asked)
    assert response.text == "OPTIONS /x"
    assert response.headers["access-control-allow-origin"] == "https://mine.example"
