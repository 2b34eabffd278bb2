"""Reserved concurrency throttles a function past its share at once (Lambda's 429 and Reason),
the account's limit throttles the rest; provisioned concurrency keeps a version's instances
started (READY once they are), follows its alias, and survives a restart. Through boto3, the
native API and the CLI."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import time

import botocore.exceptions
import pytest

from tests.conftest import write_function
from tests.system.conftest import Server, lambda_client

SLOW = """
    import time

    def handler(event, context):
        time.sleep(event.get("sleep", 0))
        return {"version": context.function_version}
"""


def _deploy(server: Server, root, name: str, **config) -> None:  # type: ignore[no-untyped-def]
    server.deploy(write_function(root, name, SLOW, **config))


def _calls(server: Server, name: str, count: int, sleep: float) -> list[int]:
    def one(_: int) -> int:
        return server.http(
            "POST", f"/v1/functions/{name}/invoke", json={"sleep": sleep}
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return sorted(pool.map(one, range(count)))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(
        tmp_path_factory.mktemp("concurrency") / "data", "--concurrency-limit", "40"
    ).start()
    yield running
    running.stop()


@pytest.fixture
def aws(server):  # type: ignore[no-untyped-def]
    """A Lambda client for one test, closed after it (its pooled sockets with it)."""
    client = lambda_client(server)
    yield client
    client.close()


def test_reserved_concurrency_throttles_past_its_share_at_once_with_lambdas_reason(
    server, tmp_path, aws
):
    _deploy(server, tmp_path, "capped", max_instances=4)
    assert (
        aws.put_function_concurrency(FunctionName="capped", ReservedConcurrentExecutions=2)[
            "ReservedConcurrentExecutions"
        ]
        == 2
    )
    assert aws.get_function(FunctionName="capped")["Concurrency"] == {
        "ReservedConcurrentExecutions": 2
    }
    statuses = _calls(server, "capped", 4, sleep=1.0)
    assert statuses == [200, 200, 429, 429], statuses
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        slow = [
            pool.submit(aws.invoke, FunctionName="capped", Payload=b'{"sleep": 1}')
            for _ in range(2)
        ]
        time.sleep(0.3)
        with pytest.raises(aws.exceptions.TooManyRequestsException) as caught:
            aws.invoke(FunctionName="capped", Payload=b"{}")
        for future in slow:  # read, so the client's connections go back to its pool
            assert json.load(future.result()["Payload"]) == {"version": "$LATEST"}
    assert caught.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    settings = aws.get_account_settings()["AccountLimit"]
    assert (settings["ConcurrentExecutions"], settings["UnreservedConcurrentExecutions"]) == (
        40,
        38,
    )
    aws.delete_function_concurrency(FunctionName="capped")
    assert (
        aws.get_function_concurrency(FunctionName="capped").get("ReservedConcurrentExecutions")
        is None
    )
    assert _calls(server, "capped", 4, sleep=0.5) == [200] * 4


def test_reserved_zero_stops_a_function_and_a_reservation_must_leave_the_rest_enough(
    server, tmp_path
):
    _deploy(server, tmp_path, "stopped")
    shown = server.cli("concurrency", "stopped", "--reserved", "0")
    assert shown.returncode == 0 and "reserved 0" in shown.stdout, shown.stderr
    refused = server.http("POST", "/v1/functions/stopped/invoke", json={})
    assert refused.status_code == 429
    assert refused.json()["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    too_much = server.cli("concurrency", "stopped", "--reserved", "39")
    assert too_much.returncode != 0 and "minimum value of [4]" in too_much.stderr
    assert server.cli("concurrency", "stopped", "--reserved", "none").returncode == 0
    assert server.http("POST", "/v1/functions/stopped/invoke", json={}).status_code == 200


def test_an_event_throttled_by_reserved_concurrency_waits_in_the_queue_not_lost(server, tmp_path):
    """As on Lambda, an asynchronous event that meets a full reservation is retried, not failed:
    with reserved 0 it waits; once the reservation is lifted it runs."""
    _deploy(server, tmp_path, "paused")
    assert server.cli("concurrency", "paused", "--reserved", "0").returncode == 0
    accepted = server.http("POST", "/v1/functions/paused/invoke?mode=async", json={})
    assert accepted.status_code == 202, accepted.text
    invocation = accepted.json()["invocation_id"]
    time.sleep(1.5)
    record = server.http("GET", f"/v1/invocations/{invocation}").json()
    assert record["state"] not in ("succeeded", "failed", "expired"), record
    assert server.cli("concurrency", "paused", "--reserved", "none").returncode == 0
    deadline = time.monotonic() + 30
    while record["state"] != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.1)
        record = server.http("GET", f"/v1/invocations/{invocation}").json()
    assert record["state"] == "succeeded", record


def test_provisioned_concurrency_keeps_a_versions_instances_and_follows_its_alias(
    server, tmp_path, aws
):
    _deploy(server, tmp_path, "warm", max_instances=3, keep_alive_s=0.5)
    aws.publish_version(FunctionName="warm")
    _deploy(server, tmp_path, "warm", max_instances=3, keep_alive_s=0.6)
    aws.publish_version(FunctionName="warm")
    aws.create_alias(FunctionName="warm", Name="live", FunctionVersion="1")
    with pytest.raises(aws.exceptions.InvalidParameterValueException):
        aws.put_provisioned_concurrency_config(
            FunctionName="warm", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    with pytest.raises(aws.exceptions.InvalidParameterValueException) as too_many:
        aws.put_provisioned_concurrency_config(
            FunctionName="warm", Qualifier="live", ProvisionedConcurrentExecutions=4
        )
    assert "max_instances is 3" in str(too_many.value)
    put = aws.put_provisioned_concurrency_config(
        FunctionName="warm", Qualifier="live", ProvisionedConcurrentExecutions=2
    )
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    config = _ready(aws, "warm", "live")
    assert config["AvailableProvisionedConcurrentExecutions"] == 2
    time.sleep(1.5)  # past keep_alive_s: provisioned instances are not reaped
    assert _instances(server, "warm:1") == 2
    aws.update_alias(FunctionName="warm", Name="live", FunctionVersion="2")
    _ready(aws, "warm", "live")
    deadline = time.monotonic() + 10
    while _instances(server, "warm:1") and time.monotonic() < deadline:
        time.sleep(0.2)  # version 1's are no longer kept: they stop after keep_alive_s
    assert (_instances(server, "warm:1"), _instances(server, "warm:2")) == (0, 2)
    listed = aws.list_provisioned_concurrency_configs(FunctionName="warm")
    assert [
        c["FunctionArn"].rsplit(":", 1)[1] for c in listed["ProvisionedConcurrencyConfigs"]
    ] == ["live"]
    with pytest.raises(aws.exceptions.ResourceConflictException):
        _conflict(aws)
    aws.delete_provisioned_concurrency_config(FunctionName="warm", Qualifier="live")
    with pytest.raises(aws.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        aws.get_provisioned_concurrency_config(FunctionName="warm", Qualifier="live")


def _conflict(aws) -> None:  # type: ignore[no-untyped-def]
    """A version with provisioned concurrency of its own is not deleted under it."""
    aws.put_provisioned_concurrency_config(
        FunctionName="warm", Qualifier="2", ProvisionedConcurrentExecutions=1
    )
    try:
        aws.delete_function(FunctionName="warm", Qualifier="2")
    finally:
        aws.delete_provisioned_concurrency_config(FunctionName="warm", Qualifier="2")


def _ready(aws, name: str, qualifier: str) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while True:
        config = aws.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if config["Status"] == "READY" or time.monotonic() > deadline:
            assert config["Status"] == "READY", config
            return config
        time.sleep(0.1)


def _instances(server: Server, target: str) -> int:
    """Instances started for ``target`` (NAME or NAME:VERSION, as `mlambda ps` names them)."""
    rows = server.http("GET", "/v1/instances").json()["processes"]
    return sum(1 for r in rows if r["kind"] == "instance" and r["function"] == target)


def test_provisioned_concurrency_survives_kill_9_of_serve(tmp_path):
    data = tmp_path / "data"
    first = Server(data).start()
    try:
        _deploy(first, tmp_path, "kept", keep_alive_s=0.5)
        assert first.http("POST", "/v1/functions/kept/versions", json={}).status_code == 201
        put = first.http("PUT", "/v1/functions/kept/provisioned/1", json={"requested": 1})
        assert put.status_code == 200, put.text
        reserved = first.http("PUT", "/v1/functions/kept/concurrency", json={"reserved": 3})
        assert reserved.status_code == 200
    finally:
        first.stop(signal.SIGKILL)
    second = Server(data).start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = second.http("GET", "/v1/functions/kept/concurrency").json()
            if state["provisioned"] and state["provisioned"][0]["status"] == "READY":
                break
            time.sleep(0.1)
        assert state["reserved"] == 3 and state["provisioned"][0]["status"] == "READY", state
        shown = second.cli("concurrency", "kept", "--json")
        assert json.loads(shown.stdout)["provisioned"][0]["qualifier"] == "1"
    finally:
        second.stop()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PUT", "/v1/functions/nobody/concurrency", {"reserved": 1}, 404),
        ("PUT", "/v1/functions/capped/concurrency", {"reserved": -1}, 400),
        ("PUT", "/v1/functions/capped/concurrency", {"reserved": "2"}, 400),
        ("PUT", "/v1/functions/capped/concurrency", {}, 400),
        ("PUT", "/v1/functions/capped/provisioned/9", {"requested": 1}, 404),
        ("PUT", "/v1/functions/capped/provisioned/$LATEST", {"requested": 1}, 400),
        ("PUT", "/v1/functions/capped/provisioned/nowhere", {"requested": 1}, 404),
        ("DELETE", "/v1/functions/capped/provisioned/nowhere", None, 404),
    ],
)
def test_bad_concurrency_requests_are_refused(server, tmp_path, aws, method, path, body, status):
    if server.http("GET", "/v1/functions/capped").status_code == 404:
        _deploy(server, tmp_path, "capped")
    kwargs = {"json": body} if body is not None else {}
    response = server.http(method, path, **kwargs)
    assert response.status_code == status, response.text
    with pytest.raises(botocore.exceptions.ClientError):
        aws.get_provisioned_concurrency_config(FunctionName="capped", Qualifier="nowhere")
