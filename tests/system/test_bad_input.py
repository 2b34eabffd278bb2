"""Bad input gets the documented status and an actionable message; nothing else is disturbed."""

from __future__ import annotations

import json

import httpx
import pytest

from mlambda import bundle

HELLO = "def handler(event, context):\n    return {'ok': True, 'event': event}\n"


@pytest.fixture(scope="module")
def served(shared_server, tmp_path_factory):
    from tests.conftest import write_function

    root = tmp_path_factory.mktemp("functions")
    shared_server.deploy(write_function(root, "hello", HELLO))
    return shared_server


def _error(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["errorType"] == error_type
    return str(body["errorMessage"])


def test_unknown_function_is_404_with_a_suggestion(served):
    message = _error(
        served.http("POST", "/v1/functions/helo/invoke", json={}), 404, "ResourceNotFoundException"
    )
    assert "'helo'" in message and "did you mean 'hello'" in message


def test_body_that_is_not_json_is_400(served):
    message = _error(
        served.http("POST", "/v1/functions/hello/invoke", content=b"{not json"),
        400,
        "InvalidRequestContentException",
    )
    assert "json" in message.lower()


def test_body_over_6_mb_is_413(served):
    big = b'{"x": "' + b"a" * (6 * 1024 * 1024) + b'"}'
    message = _error(
        served.http("POST", "/v1/functions/hello/invoke", content=big),
        413,
        "RequestTooLargeException",
    )
    assert "6291456" in message


def test_missing_or_wrong_key_is_401_and_health_needs_none(served):
    anonymous = httpx.post(f"{served.url}/v1/functions/hello/invoke", json={})
    assert "Authorization: Bearer" in _error(anonymous, 401, "UnauthorizedException")
    wrong = httpx.post(
        f"{served.url}/v1/functions/hello/invoke",
        json={},
        headers={"Authorization": "Bearer mlk_wrong"},
    )
    _error(wrong, 401, "UnauthorizedException")
    for path in ("/metrics", "/v1/functions", "/fn/hello/"):
        assert httpx.get(f"{served.url}{path}").status_code == 401
    assert httpx.get(f"{served.url}/healthz").status_code == 200


def test_key_file_is_readable_by_its_owner_only(served):
    assert (served.data_dir / "admin.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('[function]\nname = "f"\nhandler = "app:handler"\nmemory_mb = "lots"\n', "memory_mb"),
        ('[function]\nname = "f"\nhandler = "app.handler"\n', "function.handler"),
        ('[function]\nname = "f"\nhandler = "app:handler"\ntimeout = 3\n', "function.timeout_s"),
        ('[function]\nhandler = "app:handler"\n', "function.name"),
        ('[function]\nname = "f"\nhandler = "app:handler"\nmax_instances = 0\n', "max_instances"),
    ],
)
def test_invalid_spec_is_refused_naming_the_field(served, tmp_path, toml, field):
    directory = tmp_path / "f"
    directory.mkdir()
    (directory / "app.py").write_text(HELLO)
    (directory / "mlambda.toml").write_text(toml)
    cli = served.cli("deploy", str(directory))
    assert cli.returncode == 2
    assert field in cli.stderr

    if field != "function.name":  # over HTTP the URL names the function
        over_http = served.http("PUT", "/v1/functions/f", content=bundle.pack(directory))
        assert field in _error(over_http, 400, "InvalidParameterValueException")
    assert served.http("GET", "/v1/functions/f").status_code == 404


def test_handler_module_missing_from_the_bundle_is_refused_at_deploy(served, tmp_path):
    directory = tmp_path / "nomodule"
    directory.mkdir()
    (directory / "mlambda.toml").write_text('[function]\nname = "nomodule"\nhandler = "main:run"\n')
    (directory / "app.py").write_text(HELLO)
    cli = served.cli("deploy", str(directory))
    assert cli.returncode == 2
    assert "main.py" in cli.stderr


def test_a_bundle_that_is_not_an_archive_is_400(served):
    response = served.http("PUT", "/v1/functions/junk", content=b"not a tarball")
    assert "gzip" in _error(response, 400, "InvalidParameterValueException")


def test_unknown_route_and_method_answer_json(served):
    assert _error(served.http("GET", "/v2/nothing"), 404, "NotFoundException")
    assert served.http("PATCH", "/v1/functions/hello/invoke").status_code == 405


def test_nothing_was_disturbed_by_the_bad_requests(served):
    listing = {f["name"] for f in served.client.list()}
    assert listing == {"hello"}
    assert json.loads(served.client.invoke("hello", b'{"a": 1}'))["event"] == {"a": 1}


def test_openapi_document_lists_the_routes(served):
    document = served.http("GET", "/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/v1/functions/{name}/invoke" in document["paths"]
