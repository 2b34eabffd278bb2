"""The platform's own queues (mlambda://NAME): a destination sends an event's outcome there, and
a consumer receives it (hidden for a visibility timeout) and deletes it with its receipt."""

from __future__ import annotations

import json
import time

import pytest

from tests.system.conftest import Server, lambda_client
from tests.system.test_async import _accept, _function, _wait

SCORER = """
    def handler(event, context):
        if event.get("fail"):
            raise ValueError("cannot score")
        return {"score": 0.5}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("queues")
    server = Server(root / "data", "--backend", "zygote").start()
    table = (
        'maximum_retry_attempts = 0\non_success = "mlambda://scored"\n'
        'on_failure = "mlambda://scorer-failures"\n'
    )
    server.deploy(_function(root, "scorer", SCORER, async_table=table))
    server.deploy(_function(root, "plain", SCORER))
    yield server
    server.stop()


def _receive(server: Server, queue: str, **params: object) -> list[dict]:
    response = server.http("POST", f"/v1/queues/{queue}/messages/receive", params=params)
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def _eventually(server: Server, queue: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 20
    found: list[dict] = []
    while time.monotonic() < deadline and len(found) < count:
        found += _receive(server, queue, max_messages=10, visibility_timeout_s=60)
        time.sleep(0.05)
    return found


def test_outcomes_land_in_platform_queues_and_the_cli_receives_them(served):
    failed = _wait(served, _accept(served, "scorer", {"fail": True}))
    succeeded = _wait(served, _accept(served, "scorer", {"n": 1}))
    assert failed["state"] == "failed" and succeeded["state"] == "succeeded"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = {q["name"]: q["messages"] for q in served.client.queues()}
        if listed.get("scored") and listed.get("scorer-failures"):
            break
        time.sleep(0.05)
    assert "scorer-failures" in served.cli("queues").stdout
    received = served.cli("queue", "receive", "scorer-failures", "--delete")
    assert received.returncode == 0, received.stderr
    message = json.loads(received.stdout.splitlines()[0])
    record = message["body"]  # Lambda's destination record
    assert record["requestContext"]["requestId"] == failed["invocationId"]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert (
        "No message in scorer-failures" in served.cli("queue", "receive", "scorer-failures").stdout
    )
    [scored] = _eventually(served, "scored", 1)
    assert scored["body"]["responsePayload"] == {"score": 0.5}
    assert scored["body"]["requestContext"]["condition"] == "Success"
    assert served.http("GET", f"/v1/invocations/{failed['invocationId']}").json()["delivery"] == (
        "delivered"
    )


def test_a_received_message_is_hidden_until_its_visibility_timeout_then_seen_again(served):
    sent = served.cli("queue", "send", "work", "--data", '{"job": 1}')
    assert sent.returncode == 0, sent.stderr
    first = _receive(served, "work", max_messages=10, visibility_timeout_s=1)
    assert [m["body"] for m in first] == [{"job": 1}] and first[0]["receiveCount"] == 1
    assert _receive(served, "work", max_messages=10) == []  # hidden
    time.sleep(1.3)
    again = _receive(served, "work", max_messages=10, visibility_timeout_s=60)
    assert [m["messageId"] for m in again] == [first[0]["messageId"]]
    assert again[0]["receiveCount"] == 2
    # The first receive's handle is stale: it cannot delete what another receiver now holds.
    stale = served.http("DELETE", f"/v1/queues/work/messages/{first[0]['receiptHandle']}")
    assert stale.status_code == 404
    assert "receipt handle" in stale.json()["errorMessage"]
    deleted = served.http("DELETE", f"/v1/queues/work/messages/{again[0]['receiptHandle']}")
    assert deleted.status_code == 204
    assert "work" not in {q["name"] for q in served.client.queues()}


def test_bad_queue_requests_are_refused_and_store_nothing(served):
    for path, params in [
        ("/v1/queues/bad.name/messages/receive", {}),
        ("/v1/queues/work/messages/receive", {"max_messages": 11}),
        ("/v1/queues/work/messages/receive", {"visibility_timeout_s": "soon"}),
    ]:
        response = served.http("POST", path, params=params)
        assert response.status_code == 400, (path, response.text)
    too_big = served.http("POST", "/v1/queues/work/messages", content=b"x" * (1024 * 1024 + 1))
    assert too_big.status_code == 413
    assert served.http("POST", "/v1/queues/bad.name/messages", json={}).status_code == 400
    assert "work" not in {q["name"] for q in served.client.queues()}


def test_an_sqs_queue_arn_as_a_lambda_destination_is_the_platform_queue(served):
    aws = lambda_client(served)
    arn = "arn:aws:sqs:us-east-1:000000000000:plain-done"
    put = aws.put_function_event_invoke_config(
        FunctionName="plain", DestinationConfig={"OnSuccess": {"Destination": arn}}
    )
    assert put["DestinationConfig"]["OnSuccess"]["Destination"] == arn
    assert _wait(served, _accept(served, "plain", {}))["state"] == "succeeded"
    [message] = _eventually(served, "plain-done", 1)
    assert message["body"]["requestContext"]["condition"] == "Success"
