"""Event shapes as Lambda's event source mappings send them, and what a handler's answer says
of the batch it was given (pure).

A queue trigger hands a function ``{"Records": [...]}`` in SQS's shape, a stream trigger in
Kinesis's, so that a handler written for Lambda runs unchanged. ``eventSource`` names the broker
the records came from (``mlambda:rabbitmq``, ``mlambda:redis``...), ``eventSourceARN`` the
queue or stream in this platform's account and region.

With ``report_batch_item_failures`` a handler answers ``{"batchItemFailures": [{"itemIdentifier":
ID}]}`` and only those items are retried; ``failed_items`` applies Lambda's rules to that answer.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from mlambda.runtime.context import ACCOUNT

KINESIS_SCHEMA_VERSION = "1.0"


@dataclasses.dataclass(frozen=True)
class QueueMessage:
    """One message a queue trigger received from its broker."""

    id: str  # the broker's id, or one the trigger gave it: unique within the queue
    body: bytes
    receipt: str  # what acknowledges this delivery of it (the receipt handle)
    sent_at: float  # epoch seconds, when the producer sent it (or the broker took it)
    first_received_at: float  # epoch seconds, its first delivery to this trigger
    receive_count: int = 1  # deliveries so far, this one included
    attributes: Mapping[str, str] = dataclasses.field(default_factory=dict)  # the producer's


@dataclasses.dataclass(frozen=True)
class StreamRecord:
    """One record a stream trigger read, in its partition's order."""

    partition_key: str
    sequence: str  # increasing within the partition (shard)
    data: bytes
    arrived_at: float  # epoch seconds
    shard: str  # the partition (shard) it was read from


def queue_arn(region: str, queue: str) -> str:
    return f"arn:aws:sqs:{region}:{ACCOUNT}:{queue}"


def stream_arn(region: str, stream: str) -> str:
    return f"arn:aws:kinesis:{region}:{ACCOUNT}:stream/{stream}"


def _millis(seconds: float) -> str:
    return str(int(seconds * 1000))


def _text(body: bytes) -> str:
    # SQS bodies are text; a body that is not UTF-8 reaches the handler with replacement
    # characters rather than not at all (its md5OfBody is still the bytes').
    return body.decode("utf-8", errors="replace")


def sqs_record(message: QueueMessage, broker: str, queue: str, region: str) -> dict[str, Any]:
    """One entry of an SQS event's ``Records``, as Lambda's SQS event source mapping sends it."""
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt,
        "body": _text(message.body),
        "attributes": {
            "ApproximateReceiveCount": str(message.receive_count),
            "SentTimestamp": _millis(message.sent_at),
            "SenderId": ACCOUNT,
            "ApproximateFirstReceiveTimestamp": _millis(message.first_received_at),
        },
        "messageAttributes": {
            name: {
                "stringValue": value,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
            for name, value in message.attributes.items()
        },
        "md5OfBody": hashlib.md5(message.body, usedforsecurity=False).hexdigest(),
        "eventSource": f"mlambda:{broker}",
        "eventSourceARN": queue_arn(region, queue),
        "awsRegion": region,
    }


def sqs_event(
    messages: Sequence[QueueMessage], broker: str, queue: str, region: str
) -> dict[str, Any]:
    return {"Records": [sqs_record(m, broker, queue, region) for m in messages]}


def kinesis_record(record: StreamRecord, broker: str, stream: str, region: str) -> dict[str, Any]:
    """One entry of a Kinesis event's ``Records``, as Lambda's Kinesis mapping sends it."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": KINESIS_SCHEMA_VERSION,
            "partitionKey": record.partition_key,
            "sequenceNumber": record.sequence,
            "data": base64.b64encode(record.data).decode("ascii"),
            "approximateArrivalTimestamp": round(record.arrived_at, 3),
        },
        "eventSource": f"mlambda:{broker}",
        "eventVersion": "1.0",
        "eventID": f"{record.shard}:{record.sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/mlambda",
        "awsRegion": region,
        "eventSourceARN": stream_arn(region, stream),
    }


def kinesis_event(
    records: Sequence[StreamRecord], broker: str, stream: str, region: str
) -> dict[str, Any]:
    return {"Records": [kinesis_record(r, broker, stream, region) for r in records]}


class WholeBatch(Exception):
    """The answer fails the whole batch (Lambda's rules); the message says why, for the log."""


def failed_items(answer: Any, identifiers: Sequence[str]) -> list[str]:
    """The identifiers (message ids, or sequence numbers of a stream's batch) a handler's answer
    reports as failed, in the batch's order; [] when every item succeeded.

    As Lambda: no answer, an answer without ``batchItemFailures``, or an empty or null list is a
    success of every item. An answer that is not an object, a list that is not a list, an
    entry without an ``itemIdentifier`` string, an empty one, or one that names no item of the
    batch fails the whole batch: WholeBatch.
    """
    if answer is None:
        return []
    if not isinstance(answer, Mapping):
        raise WholeBatch(f"the answer is a {type(answer).__name__}, not an object")
    failures = answer.get("batchItemFailures")
    if failures is None:
        return []
    if not isinstance(failures, list):
        raise WholeBatch("batchItemFailures is not a list")
    known = set(identifiers)
    named: set[str] = set()
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, Mapping) else None
        if not isinstance(identifier, str) or not identifier:
            raise WholeBatch(f"a batchItemFailures entry has no itemIdentifier: {entry!r:.100}")
        if identifier not in known:
            raise WholeBatch(f"itemIdentifier {identifier!r:.100} is not an item of this batch")
        named.add(identifier)
    return [identifier for identifier in identifiers if identifier in named]


def stream_retry_from(answer: Any, sequences: Sequence[str]) -> int | None:
    """Where a stream's batch resumes: the index (in ``sequences``, the batch's order) of the
    first record to process again, or None when every record succeeded. As Lambda, the
    checkpoint goes just before the first failed record, and every record from it is retried;
    an answer that fails the whole batch resumes at 0."""
    try:
        failed = failed_items(answer, sequences)
    except WholeBatch:
        return 0
    return sequences.index(failed[0]) if failed else None


# -- S3 event notifications and EventBridge events (object, schedule and rule triggers) -------

S3_EVENT_VERSION = "2.1"
CREATED, REMOVED = "ObjectCreated:Put", "ObjectRemoved:Delete"


def iso_time(seconds: float, millis: bool = True) -> str:
    """UTC in ISO 8601 with a Z, as S3 (with milliseconds) and EventBridge (without) write it."""
    whole = int(seconds)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{text}.{int((seconds - whole) * 1000):03d}Z" if millis else f"{text}Z"


@dataclasses.dataclass(frozen=True)
class ObjectEvent:
    """An object created or removed, as a watch saw it or a notification said."""

    name: str  # CREATED, REMOVED, or another of S3's (ObjectCreated:Copy...)
    bucket: str
    key: str  # as stored (the record carries it URL-encoded)
    size: int | None  # None for a removal
    etag: str
    sequencer: str
    at: float  # epoch seconds

    @property
    def kind(self) -> str:
        return "removed" if self.name.startswith("ObjectRemoved") else "created"


def s3_record(event: ObjectEvent, region: str, configuration: str) -> dict[str, Any]:
    """One record of S3's event notification (``Records[]``), as Lambda receives it."""
    obj: dict[str, Any] = {"key": urllib.parse.quote_plus(event.key, safe="/")}
    if event.kind == "created":
        obj.update(size=event.size, eTag=event.etag)
    obj["sequencer"] = event.sequencer
    return {
        "eventVersion": S3_EVENT_VERSION,
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": iso_time(event.at),
        "eventName": event.name,
        "userIdentity": {"principalId": "mlambda"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": event.sequencer[-16:],
            "x-amz-id-2": hashlib.sha256(event.sequencer.encode()).hexdigest(),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration,
            "bucket": {
                "name": event.bucket,
                "ownerIdentity": {"principalId": "mlambda"},
                "arn": f"arn:aws:s3:::{event.bucket}",
            },
            "object": obj,
        },
    }


def bus_event(
    source: str,
    detail_type: str,
    detail: Any,
    *,
    id: str,
    at: float,
    region: str,
    resources: Sequence[str] = (),
) -> dict[str, Any]:
    """An EventBridge event: what a rule matches, and what its function receives."""
    return {
        "version": "0",
        "id": id,
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": iso_time(at, millis=False),
        "region": region,
        "resources": list(resources),
        "detail": detail,
    }


def schedule_arn(region: str, function: str, trigger: str) -> str:
    return f"arn:aws:events:{region}:{ACCOUNT}:rule/{function}-{trigger[:8]}"
