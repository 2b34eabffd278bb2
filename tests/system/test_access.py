"""Keys with scopes, SigV4 done right, rate limits and the platform's caps, on a real server."""

from __future__ import annotations

import concurrent.futures
import json
import time
from contextlib import closing

import botocore.exceptions
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import write_function
from tests.system.conftest import Server, lambda_client

ECHO = "def handler(event, context):\n    return {'fn': context.function_name, 'event': event}\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("functions")
    server = Server(tmp_path_factory.mktemp("access") / "data").start()
    for name in ("fraud", "fraud-eu", "hello"):
        server.deploy(write_function(root, name, ECHO))
    yield server
    server.stop()


def _key(server: Server, *scopes: str, **options: object) -> dict:
    return server.client.create_key({"name": "k", "scopes": list(scopes), **options})


def _call(server: Server, token: str, method: str, path: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


def test_a_key_scoped_to_invoke_fraud_star_invokes_fraud_and_nothing_else(served, tmp_path):
    token = _key(served, "invoke:fraud*")["token"]
    for name in ("fraud", "fraud-eu"):
        assert (
            _call(served, token, "POST", f"/v1/functions/{name}/invoke", json={}).status_code == 200
        )
    denied = _call(served, token, "POST", "/v1/functions/hello/invoke", json={})
    assert denied.status_code == 403
    assert denied.json()["errorType"] == "AccessDeniedException"
    assert "invoke:hello" in denied.json()["errorMessage"]
    for method, path in [
        ("GET", "/v1/functions"),
        ("GET", "/v1/keys"),
        ("DELETE", "/v1/functions/fraud"),
    ]:
        assert _call(served, token, method, path).status_code == 403
    bundle = write_function(tmp_path, "fraud", ECHO + "# changed\n")
    from mlambda import bundle as bundles

    refused = _call(served, token, "PUT", "/v1/functions/fraud", content=bundles.pack(bundle))
    assert refused.status_code == 403
    assert served.client.get("fraud")["instances"] is not None  # still there


def test_an_expired_or_revoked_key_is_401(served):
    expiring = _key(served, "invoke", expires_s=1)
    revoked = _key(served, "invoke")
    assert _call(served, revoked["token"], "POST", "/v1/functions/hello/invoke").status_code == 200
    served.client.revoke_key(revoked["id"])
    time.sleep(1.2)
    for key, state in ((expiring, "expired"), (revoked, "revoked")):
        response = _call(served, key["token"], "POST", "/v1/functions/hello/invoke")
        assert response.status_code == 401
        assert state in response.json()["errorMessage"]
    listed = {k["id"]: k["state"] for k in served.client.list_keys()}
    assert listed[expiring["id"]] == "expired" and listed[revoked["id"]] == "revoked"
    assert "token" not in json.dumps(served.client.list_keys())


def _lambda(server: Server, key_id: str, secret: str):  # type: ignore[no-untyped-def]
    return lambda_client(server, secret, key_id=key_id)


def test_boto3_signs_with_a_scoped_key_and_gets_aws_errors(served):
    key = _key(served, "invoke:fraud")
    with closing(_lambda(served, key["id"], key["secretAccessKey"])) as aws:
        reply = aws.invoke(FunctionName="fraud", Payload=b'{"a": 1}')
        assert json.load(reply["Payload"])["event"] == {"a": 1}
        with pytest.raises(botocore.exceptions.ClientError) as denied:
            aws.invoke(FunctionName="hello", Payload=b"{}")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    with (
        closing(_lambda(served, key["id"], "not-the-secret")) as forger,
        pytest.raises(botocore.exceptions.ClientError) as forged,
    ):
        forger.invoke(FunctionName="fraud", Payload=b"{}")
    assert forged.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert forged.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with (
        closing(_lambda(served, "MLKAAAAAAAAAAAAAAAAA", "x")) as stranger,
        pytest.raises(botocore.exceptions.ClientError) as unknown,
    ):
        stranger.invoke(FunctionName="fraud", Payload=b"{}")
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"
    with closing(_lambda(served, "anything", served.key)) as admin:
        assert admin.invoke(FunctionName="hello", Payload=b"{}")["StatusCode"] == 200


def _signed(server: Server, body: bytes, content_sha256: str | None) -> dict[str, str]:
    url = f"{server.url}/2015-03-31/functions/hello/invocations"
    headers = {"x-amz-content-sha256": content_sha256} if content_sha256 else {}
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials("admin", server.key), "lambda", "us-east-1").add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("declared", ["UNSIGNED-PAYLOAD", "hash-of-the-original"])
def test_a_captured_signed_request_replayed_with_another_body_is_403(served, declared):
    import hashlib

    original = b'{"amount": 10}'
    if declared == "hash-of-the-original":
        declared = hashlib.sha256(original).hexdigest()
    headers = _signed(served, original, declared)
    url = f"{served.url}/2015-03-31/functions/hello/invocations"
    if declared != "UNSIGNED-PAYLOAD":
        assert httpx.post(url, content=original, headers=headers).status_code == 200
    replay = httpx.post(url, content=b'{"amount": 10000}', headers=headers)
    assert replay.status_code == 403
    assert replay.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_a_key_over_its_rate_gets_429_with_retry_after_and_recovers(served):
    token = _key(served, "invoke", rate_limit=2, burst=2)["token"]
    path = "/v1/functions/hello/invoke"
    assert [_call(served, token, "POST", path).status_code for _ in range(2)] == [200, 200]
    limited = _call(served, token, "POST", path)
    assert limited.status_code == 429
    assert limited.json()["errorType"] == "TooManyRequestsException"
    assert int(limited.headers["Retry-After"]) >= 1
    time.sleep(float(limited.headers["Retry-After"]))
    assert _call(served, token, "POST", path).status_code == 200
    # Another key is not limited by this one.
    assert _call(served, served.key, "POST", path).status_code == 200


def test_a_function_over_its_rate_limit_gets_429_on_every_route(tmp_path, make_function):
    server = Server(tmp_path / "data").start()
    try:
        server.deploy(make_function("slowly", ECHO, rate_limit=0.5, rate_limit_burst=1))
        assert server.http("POST", "/v1/functions/slowly/invoke", json={}).status_code == 200
        limited = server.http("POST", "/v1/functions/slowly/invoke", json={})
        assert (
            limited.status_code == 429 and "function.rate_limit" in limited.json()["errorMessage"]
        )
        assert int(limited.headers["Retry-After"]) >= 1
        with (
            closing(_lambda(server, "admin", server.key)) as aws,
            pytest.raises(botocore.exceptions.ClientError) as caught,
        ):
            aws.invoke(FunctionName="slowly", Payload=b"{}")
        assert caught.value.response["Error"]["Code"] == "TooManyRequestsException"
        time.sleep(2.1)
        assert server.http("POST", "/v1/functions/slowly/invoke", json={}).status_code == 200
    finally:
        server.stop()


def test_guessing_keys_gets_slower_then_refused(tmp_path, make_function):
    server = Server(tmp_path / "data").start()
    try:
        server.deploy(make_function("hello", ECHO))
        url = f"{server.url}/v1/functions/hello/invoke"

        def guess(i: int) -> tuple[int, float]:
            started = time.monotonic()
            status = httpx.post(url, headers={"Authorization": f"Bearer mlk_guess{i}"}, timeout=30)
            return status.status_code, time.monotonic() - started

        first = [guess(i) for i in range(5)]
        assert all(status == 401 and took < 1.0 for status, took in first)
        with concurrent.futures.ThreadPoolExecutor(15) as pool:
            later = list(pool.map(guess, range(5, 20)))
        assert all(status == 401 for status, _ in later)
        assert max(took for _, took in later) >= 1.5  # answered after a growing delay
        refused = httpx.post(url, headers={"Authorization": f"Bearer {server.key}"})
        assert refused.status_code == 429  # the address is refused, whatever it sends now
        assert int(refused.headers["Retry-After"]) > 0
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()


def test_a_deploy_asking_for_more_than_the_platform_has_is_400_naming_the_field(
    tmp_path, make_function
):
    server = Server(
        tmp_path / "data", "--max-memory-mb", "1024", "--max-instances-total", "8"
    ).start()
    try:
        for fields, field in [
            ({"memory_mb": 2048}, "function.memory_mb"),
            ({"max_instances": 9}, "function.max_instances"),
        ]:
            cli = server.cli("deploy", str(make_function("big", ECHO, **fields)))
            assert cli.returncode == 2 and field in cli.stderr
        assert server.http("GET", "/v1/functions/big").status_code == 404
    finally:
        server.stop()
