"""The platform's queues over the SQS JSON protocol: boto3's sqs client and the AWS CLI, pointed
at the platform, create, find, send, receive, delete, measure and purge; a producer written
for SQS feeds a function's queue trigger by changing its endpoint only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import closing

import botocore.config
import pytest
from botocore.exceptions import ClientError

from tests.conftest import write_function
from tests.system.conftest import Server

RECORDER = """
    def handler(event, context):
        print("BODIES " + " ".join(r["body"] for r in event["Records"]))
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("sqs")
    server = Server(root / "data", "--backend", "zygote").start()
    server.root = root  # type: ignore[attr-defined]
    yield server
    server.stop()


def _sqs(server: Server, key_id: str = "mlambda", secret: str | None = None):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "sqs",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret or server.key,
        config=botocore.config.Config(retries={"max_attempts": 0}),
    )


def test_boto3_creates_sends_receives_deletes_and_purges(served):
    with closing(_sqs(served)) as sqs:
        url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        assert url.endswith("/jobs")
        assert sqs.create_queue(QueueName="jobs")["QueueUrl"] == url  # made once
        assert sqs.get_queue_url(QueueName="jobs")["QueueUrl"] == url
        assert url in sqs.list_queues(QueueNamePrefix="jo")["QueueUrls"]
        # boto3 checks MD5OfMessageBody against what it sent.
        sent = sqs.send_message(QueueUrl=url, MessageBody='{"job": 1}')
        batch = sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": f"e{i}", "MessageBody": json.dumps({"job": i})} for i in (2, 3)],
        )
        assert [e["Id"] for e in batch["Successful"]] == ["e2", "e3"] and not batch["Failed"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        assert attributes == {"ApproximateNumberOfMessages": "3"}
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
        )["Messages"]
        assert {m["Body"] for m in got} == {'{"job": 1}', '{"job": 2}', '{"job": 3}'}
        first = next(m for m in got if m["MessageId"] == sent["MessageId"])
        assert first["Attributes"]["ApproximateReceiveCount"] == "1"
        sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
        with pytest.raises(ClientError) as stale:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
        assert stale.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
        sqs.purge_queue(QueueUrl=url)
        # Long polling: nothing is there, and the call waits for what is sent meanwhile.
        started = time.monotonic()
        assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
        assert time.monotonic() - started >= 0.9
        sqs.delete_queue(QueueUrl=url)
        with pytest.raises(sqs.exceptions.QueueDoesNotExist):
            sqs.get_queue_url(QueueName="jobs")


def test_what_is_refused_is_refused_as_sqs_refuses_it(served):
    with closing(_sqs(served)) as sqs:
        with pytest.raises(sqs.exceptions.QueueDoesNotExist):
            sqs.send_message(QueueUrl=f"{served.url}/000000000000/never-made", MessageBody="x")
        url = sqs.create_queue(QueueName="strict")["QueueUrl"]
        for call, code in (
            (lambda: sqs.create_queue(QueueName="bad name"), "InvalidParameterValue"),
            (lambda: sqs.create_queue(QueueName="q.fifo"), "UnsupportedOperation"),
            (
                lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11),
                "InvalidParameterValue",
            ),
            (lambda: sqs.send_message_batch(QueueUrl=url, Entries=[]), "EmptyBatchRequest"),
            (
                lambda: sqs.send_message(
                    QueueUrl=url,
                    MessageBody="x",
                    MessageAttributes={"a": {"DataType": "String", "StringValue": "b"}},
                ),
                "UnsupportedOperation",
            ),
        ):
            with pytest.raises(ClientError) as refused:
                call()
            assert refused.value.response["Error"]["Code"].endswith(code), refused.value
        assert (
            sqs.get_queue_attributes(QueueUrl=url)["Attributes"]["ApproximateNumberOfMessages"]
            == "0"
        )  # nothing refused was stored


def test_a_key_sends_only_to_the_queues_it_covers(served):
    key = served.client.create_key({"name": "producer", "scopes": ["invoke:orders-*"]})
    with closing(_sqs(served, key["id"], key["secretAccessKey"])) as sqs:
        url = sqs.create_queue(QueueName="orders-eu")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="ok")
        with pytest.raises(ClientError) as denied:
            sqs.create_queue(QueueName="payroll")
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with closing(_sqs(served, key["id"], "not-the-secret")) as sqs:
        with pytest.raises(ClientError) as unsigned:
            sqs.send_message(QueueUrl=url, MessageBody="forged")
        assert unsigned.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_producer_written_for_sqs_feeds_a_function(served):
    directory = write_function(served.root, "consumer", RECORDER)  # type: ignore[attr-defined]
    with (directory / "mlambda.toml").open("a") as toml:
        toml.write('[[triggers]]\ntype = "queue"\nsource = "mlambda://incoming"\nbatch_size = 10\n')
    served.deploy(directory)
    with closing(_sqs(served)) as sqs:
        url = sqs.create_queue(QueueName="incoming")["QueueUrl"]
        for start in range(0, 50, 10):
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(start, start + 10)],
            )
    deadline = time.monotonic() + 30
    while served.client.triggers("consumer")[0]["status"]["processed"] < 50:
        assert time.monotonic() < deadline, served.client.triggers("consumer")
        time.sleep(0.1)
    logs = "\n".join(served.client.logs("consumer", tail=1000))
    assert all(f"m{n}" in logs for n in range(50))


def test_the_aws_cli_sends_and_receives(served):
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "mlambda",
        "AWS_SECRET_ACCESS_KEY": served.key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }
    aws = [os.path.join(os.path.dirname(sys.executable), "aws"), "--endpoint-url", served.url]

    def run(*args: str) -> dict:
        done = subprocess.run(
            [*aws, "sqs", *args], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout or "{}")

    url = run("create-queue", "--queue-name", "cli-jobs")["QueueUrl"]
    run("send-message", "--queue-url", url, "--message-body", "from the CLI")
    [message] = run("receive-message", "--queue-url", url)["Messages"]
    assert message["Body"] == "from the CLI"
    run("delete-message", "--queue-url", url, "--receipt-handle", message["ReceiptHandle"])
    attributes = run("get-queue-attributes", "--queue-url", url, "--attribute-names", "All")
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
