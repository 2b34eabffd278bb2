"""The SQS and Kinesis event shapes a trigger hands a function, and Lambda's rules for what a
handler's ``batchItemFailures`` answer says of its batch, by table."""

from __future__ import annotations

import base64
import hashlib

import pytest

from mlambda.events.shapes import (
    QueueMessage,
    StreamRecord,
    WholeBatch,
    failed_items,
    kinesis_event,
    sqs_event,
    stream_retry_from,
)

IDS = ["m1", "m2", "m3"]


def test_an_sqs_record_has_every_field_a_lambda_handler_reads():
    message = QueueMessage(
        id="m1",
        body="héllo".encode(),
        receipt="r-1",
        sent_at=1_700_000_000.25,
        first_received_at=1_700_000_001.5,
        receive_count=2,
        attributes={"kind": "order"},
    )
    (record,) = sqs_event([message], "rabbitmq", "orders", "eu-west-1")["Records"]
    assert record == {
        "messageId": "m1",
        "receiptHandle": "r-1",
        "body": "héllo",
        "attributes": {
            "ApproximateReceiveCount": "2",
            "SentTimestamp": "1700000000250",
            "SenderId": "000000000000",
            "ApproximateFirstReceiveTimestamp": "1700000001500",
        },
        "messageAttributes": {
            "kind": {
                "stringValue": "order",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
        },
        "md5OfBody": hashlib.md5("héllo".encode()).hexdigest(),
        "eventSource": "mlambda:rabbitmq",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:000000000000:orders",
        "awsRegion": "eu-west-1",
    }


def test_a_body_that_is_not_utf8_still_reaches_the_handler():
    message = QueueMessage(id="m", body=b"\xff\xfeok", receipt="r", sent_at=0, first_received_at=0)
    (record,) = sqs_event([message], "redis", "q", "us-east-1")["Records"]
    assert record["body"].endswith("ok")
    assert record["md5OfBody"] == hashlib.md5(b"\xff\xfeok").hexdigest()


def test_a_kinesis_record_carries_its_data_base64_and_its_position():
    record = StreamRecord(
        partition_key="user-7", sequence="000042", data=b"\x00click", arrived_at=12.3456, shard="s0"
    )
    (event,) = kinesis_event([record], "nats", "CLICKS", "us-east-1")["Records"]
    assert event["kinesis"] == {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": "user-7",
        "sequenceNumber": "000042",
        "data": base64.b64encode(b"\x00click").decode(),
        "approximateArrivalTimestamp": 12.346,
    }
    assert event["eventID"] == "s0:000042"
    assert event["eventName"] == "aws:kinesis:record"
    assert event["eventSource"] == "mlambda:nats"
    assert event["eventSourceARN"] == "arn:aws:kinesis:us-east-1:000000000000:stream/CLICKS"


@pytest.mark.parametrize(
    ("answer", "failed"),
    [
        (None, []),
        ({}, []),
        ({"batchItemFailures": None}, []),
        ({"batchItemFailures": []}, []),
        ({"other": 1}, []),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, ["m2"]),
        # In the batch's order, each once.
        (
            {"batchItemFailures": [{"itemIdentifier": i} for i in ("m3", "m1", "m3")]},
            ["m1", "m3"],
        ),
    ],
)
def test_what_an_answer_reports_as_failed(answer, failed):
    assert failed_items(answer, IDS) == failed


@pytest.mark.parametrize(
    "answer",
    [
        "ok",
        [1, 2],
        {"batchItemFailures": "m1"},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemidentifier": "m1"}]},  # a bad key name
        {"batchItemFailures": [{"itemIdentifier": 2}]},
        {"batchItemFailures": ["m1"]},
        {"batchItemFailures": [{"itemIdentifier": "m9"}]},  # not an item of this batch
    ],
)
def test_an_answer_lambda_would_not_accept_fails_the_whole_batch(answer):
    with pytest.raises(WholeBatch):
        failed_items(answer, IDS)


SEQUENCES = ["100", "101", "102", "103"]


@pytest.mark.parametrize(
    ("answer", "resume_at"),
    [
        (None, None),
        ({"batchItemFailures": []}, None),
        ({"batchItemFailures": [{"itemIdentifier": "102"}]}, 2),
        # The checkpoint goes before the first failed record, whatever order they are named in.
        ({"batchItemFailures": [{"itemIdentifier": s} for s in ("103", "101")]}, 1),
        ({"batchItemFailures": [{"itemIdentifier": "999"}]}, 0),
        ("not an object", 0),
    ],
)
def test_where_a_stream_batch_resumes(answer, resume_at):
    assert stream_retry_from(answer, SEQUENCES) == resume_at
