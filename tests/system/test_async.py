"""Asynchronous invocation: accepted means stored, and stored means run at least once, whatever
is killed on the way (boto3's InvocationType=Event, the native ?mode=async, the CLI)."""

from __future__ import annotations

import json
import time

import botocore.exceptions
import pytest

from tests.conftest import write_function
from tests.system.conftest import Server, lambda_client

ECHO = """
    import time

    def handler(event, context):
        time.sleep(event.get("sleep", 0))
        if event.get("fail"):
            raise ValueError("asked to fail")
        return {"n": event.get("n"), "request": context.aws_request_id}
"""


def _function(root, name: str, code: str = ECHO, async_table: str = "", **config):  # type: ignore[no-untyped-def]
    directory = write_function(root, name, code, **config)
    if async_table:
        with (directory / "mlambda.toml").open("a") as toml:
            toml.write("[function.async]\n" + async_table)
    return directory


def _wait(server: Server, invocation_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = server.http("GET", f"/v1/invocations/{invocation_id}").json()
        if record["state"] in ("succeeded", "failed", "expired"):
            return record
        time.sleep(0.05)
    raise AssertionError(f"{invocation_id} still {record['state']} after {timeout} s: {record}")


def _accept(server: Server, name: str, event: dict, **headers: str) -> str:
    response = server.http(
        "POST", f"/v1/functions/{name}/invoke?mode=async", json=event, headers=headers
    )
    assert response.status_code == 202, response.text
    return response.json()["invocation_id"]


@pytest.fixture(scope="module")
def served(shared_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("async")
    shared_server.deploy(_function(root, "echo"))
    shared_server.deploy(
        _function(root, "flaky", async_table="maximum_retry_attempts = 1\nretry_delay_s = 0.1\n")
    )
    shared_server.deploy(_function(root, "once", async_table="maximum_retry_attempts = 0\n"))
    return shared_server


def test_boto3_event_invocation_is_accepted_with_202_and_runs(served):
    response = lambda_client(served).invoke(
        FunctionName="echo", InvocationType="Event", Payload=json.dumps({"n": 7})
    )
    assert response["StatusCode"] == 202
    invocation_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    record = _wait(served, invocation_id)
    assert record["state"] == "succeeded" and record["attempts"] == 1
    assert record["result"] == {"n": 7, "request": invocation_id}
    assert record["executedVersion"] == "$LATEST"


def test_the_native_api_and_the_cli_accept_list_and_show(served):
    invocation_id = _accept(served, "echo", {"n": 1})
    assert _wait(served, invocation_id)["result"]["n"] == 1
    cli = served.cli("invoke", "echo", "--async", "--data", '{"n": 2}')
    assert cli.returncode == 0, cli.stderr
    from_cli = cli.stdout.strip()
    assert _wait(served, from_cli)["result"]["n"] == 2
    listing = served.cli("invocations", "echo")
    assert listing.returncode == 0 and from_cli in listing.stdout and "succeeded" in listing.stdout
    shown = json.loads(served.cli("invocations", "show", from_cli).stdout)
    assert shown["invocationId"] == from_cli and shown["state"] == "succeeded"
    everyone = served.http("GET", "/v1/invocations?state=succeeded").json()["invocations"]
    assert from_cli in {r["invocationId"] for r in everyone}


def test_bad_requests_are_refused_before_anything_is_stored(served):
    before = len(served.http("GET", "/v1/functions/echo/invocations").json()["invocations"])
    bad = served.http(
        "POST", "/v1/functions/echo/invoke?mode=async", content=b"{not json", headers={}
    )
    assert bad.status_code == 400
    assert served.http("POST", "/v1/functions/nope/invoke?mode=async", json={}).status_code == 404
    big = served.http(
        "POST", "/v1/functions/echo/invoke?mode=async", json={"x": "a" * (1024 * 1024)}
    )
    assert big.status_code == 413
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        lambda_client(served).invoke(
            FunctionName="echo", InvocationType="Event", Payload=json.dumps({"x": "a" * 1048576})
        )
    assert caught.value.response["Error"]["Code"] == "RequestTooLargeException"
    assert served.http("POST", "/v1/functions/echo/invoke?mode=later", json={}).status_code == 400
    after = len(served.http("GET", "/v1/functions/echo/invocations").json()["invocations"])
    assert after == before


def test_a_failing_event_is_retried_as_configured_then_kept_as_failed(served):
    flaky = _wait(served, _accept(served, "flaky", {"fail": True}))
    assert flaky["state"] == "failed" and flaky["attempts"] == 2 and flaky["maxAttempts"] == 2
    assert flaky["error"]["errorType"] == "ValueError"
    once = _wait(served, _accept(served, "once", {"fail": True}))
    assert once["state"] == "failed" and once["attempts"] == 1
    failed = served.cli("invocations", "flaky", "--state", "failed", "--json")
    assert flaky["invocationId"] in {r["invocationId"] for r in json.loads(failed.stdout)}


def test_a_retried_accept_with_the_same_key_is_the_same_invocation(served):
    first = _accept(served, "echo", {"n": 5}, **{"Idempotency-Key": "order-5"})
    again = _accept(served, "echo", {"n": 5}, **{"Idempotency-Key": "order-5"})
    assert first == again
    other = _accept(served, "echo", {"n": 5}, **{"Idempotency-Key": "order-6"})
    assert other != first


def test_queue_depth_is_in_the_metrics_while_events_wait(server, make_function):
    server.deploy(make_function("slow", ECHO, max_instances=1))
    ids = [_accept(server, "slow", {"sleep": 0.3, "n": n}) for n in range(4)]
    text = server.http("GET", "/metrics").text
    assert 'mlambda_async_queue_depth{function="slow"}' in text
    assert 'mlambda_async_oldest_age_seconds{function="slow"}' in text
    assert all(_wait(server, i)["state"] == "succeeded" for i in ids)
    assert 'mlambda_async_queue_depth{function="slow"}' not in server.http("GET", "/metrics").text


def test_events_of_a_removed_function_fail_with_the_reason(server, make_function):
    server.deploy(make_function("doomed", ECHO, max_instances=1))
    ids = [_accept(server, "doomed", {"sleep": 0.5}) for _ in range(5)]
    time.sleep(0.2)
    assert server.cli("rm", "doomed").returncode == 0
    records = [_wait(server, i) for i in ids]
    assert all(r["state"] in ("succeeded", "failed") for r in records)
    removed = [r for r in records if r["state"] == "failed"]
    assert removed and all("removed" in r["error"]["errorMessage"] for r in removed)


AUDIT = """
    def handler(event, context):
        return event  # the destination record, kept as this invocation's result
"""


class _Webhook:
    """A webhook receiver on 127.0.0.1 that keeps what it is sent."""

    def __init__(self) -> None:
        import http.server
        import threading

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_outcomes_reach_their_destinations_in_lambdas_shape(server, tmp_path):
    hook = _Webhook()
    try:
        root = tmp_path / "fns"
        server.deploy(_function(root, "audit", AUDIT))
        table = (
            'on_success = "function:audit"\n'
            f'on_failure = "{hook.url}"\n'
            "maximum_retry_attempts = 1\nretry_delay_s = 0.1\n"
        )
        server.deploy(_function(root, "scored", async_table=table))
        ok = _accept(server, "scored", {"n": 3})
        bad = _accept(server, "scored", {"fail": True, "n": 4})
        assert _wait(server, ok)["state"] == "succeeded"
        failed = _wait(server, bad)
        assert failed["state"] == "failed"
        (posted,) = hook.wait(1)
        assert posted["version"] == "1.0"
        assert posted["requestContext"]["requestId"] == bad
        assert posted["requestContext"]["condition"] == "RetriesExhausted"
        assert posted["requestContext"]["approximateInvokeCount"] == 2
        assert posted["requestContext"]["functionArn"].endswith(":function:scored:$LATEST")
        assert posted["requestPayload"] == {"fail": True, "n": 4}
        assert posted["responseContext"]["functionError"] == "Unhandled"
        assert posted["responsePayload"]["errorType"] == "ValueError"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            audited = server.http("GET", "/v1/functions/audit/invocations?state=succeeded")
            records = audited.json()["invocations"]
            if records:
                break
            time.sleep(0.05)
        (delivered,) = [r["result"] for r in records]
        assert delivered["requestContext"]["condition"] == "Success"
        assert delivered["requestPayload"] == {"n": 3}
        assert delivered["responsePayload"]["n"] == 3
        assert _wait(server, ok)["delivery"] == "delivered"
        assert server.http("GET", f"/v1/invocations/{bad}").json()["delivery"] == "delivered"
    finally:
        hook.close()


def test_dead_letters_are_listed_and_replayed_as_new_invocations(server, tmp_path):
    code = """
        import os
        def handler(event, context):
            if not os.path.exists("/tmp/fixed") and event.get("fix"):
                open("/tmp/fixed", "w").close()
            if event.get("fail"):
                raise ValueError("still broken")
            return event
    """
    server.deploy(
        _function(tmp_path / "fns", "dl", code, async_table="maximum_retry_attempts = 0\n")
    )
    dead = _wait(server, _accept(server, "dl", {"fail": True}))
    letters = server.http("GET", "/v1/functions/dl/dead-letters").json()["deadLetters"]
    assert [r["invocationId"] for r in letters] == [dead["invocationId"]]
    replayed = server.cli("invocations", "replay", dead["invocationId"])
    assert replayed.returncode == 0, replayed.stderr
    new_id = replayed.stdout.split(" -> ")[1].strip()
    again = _wait(server, new_id)
    assert again["state"] == "failed" and again["invocationId"] != dead["invocationId"]
    bulk = server.cli("invocations", "replay", "--all-failed", "dl")
    assert bulk.returncode == 0 and bulk.stdout.count(" -> ") == 2
    running = server.http("POST", f"/v1/functions/dl/invocations/{new_id}/replay")
    assert running.status_code == 202
    wrong = server.http("POST", f"/v1/functions/echo2/invocations/{new_id}/replay")
    assert wrong.status_code == 404


CRASHES = """
    import os, time

    def handler(event, context):
        if event.get("crash"):
            os._exit(3)
        if event.get("hang"):
            time.sleep(30)
        if event.get("mb"):
            block = b"x" * (event["mb"] * 1024 * 1024)
            time.sleep(0.5)
            return len(block)
        return {"ok": True}
"""


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"crash": True}, "Runtime.ExitError"),
        ({"hang": True}, "Sandbox.Timedout"),
        ({"mb": 400}, "Runtime.OutOfMemory"),
    ],
)
def test_an_instance_that_crashes_hangs_or_runs_out_of_memory_fails_the_attempt_and_is_retried(
    server, tmp_path, event, error
):
    table = "maximum_retry_attempts = 1\nretry_delay_s = 0.1\n"
    server.deploy(
        _function(
            tmp_path / "fns", "fragile", CRASHES, async_table=table, timeout_s=1, memory_mb=128
        )
    )
    record = _wait(server, _accept(server, "fragile", event), timeout=60)
    # Each attempt died with the error a sync call gets, and the config's retry ran.
    assert record["state"] == "failed" and record["attempts"] == 2, record
    assert record["error"]["errorType"] == error
    sync = server.http("POST", "/v1/functions/fragile/invoke", json=event)
    assert sync.json()["errorType"] == error
    # The function itself is fine for the next event, on a fresh instance.
    assert _wait(server, _accept(server, "fragile", {}))["state"] == "succeeded"
