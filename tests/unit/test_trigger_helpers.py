"""The small decisions of the trigger runners: retry delays, what an answer fails, which lane a
key goes to, the failure record a stream sends, and how a buffer becomes a batch."""

from __future__ import annotations

import asyncio
import json

import pytest

from mlambda.errors import FunctionError
from mlambda.events.shapes import QueueMessage, StreamRecord
from mlambda.events.triggers.broker import collect
from mlambda.events.triggers.config import parse_trigger
from mlambda.events.triggers.queue import batch_failures, retry_delay
from mlambda.events.triggers.store import Trigger
from mlambda.events.triggers.stream import failure_record, lane_of
from mlambda.pool.invocation import Invocation


@pytest.mark.parametrize(
    ("receives", "delay"), [(1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0), (100, 30.0)]
)
def test_a_failed_message_waits_longer_with_each_receive_up_to_30_s(receives, delay):
    assert retry_delay(receives) == delay


IDS = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("body", "error", "partial", "failed"),
    [
        (b"", False, True, []),
        (b"null", False, True, []),
        (b'{"batchItemFailures": []}', False, True, []),
        (b'{"batchItemFailures": [{"itemIdentifier": "b"}]}', False, True, ["b"]),
        (b'{"batchItemFailures": [{"itemIdentifier": "b"}]}', False, False, []),
        (b'{"batchItemFailures": [{"itemIdentifier": "zz"}]}', False, True, None),
        (b"not json", False, True, None),
        (b"[1]", False, True, None),
        (b"{}", True, False, None),
        (b"{}", True, True, None),
    ],
)
def test_what_a_queue_batch_answer_fails(body, error, partial, failed):
    fault = FunctionError({"errorType": "ValueError", "errorMessage": "x"}) if error else None
    assert batch_failures(Invocation("r", body=body, error=fault), IDS, partial) == failed


def test_a_key_always_goes_to_the_same_lane_and_keys_spread_over_lanes():
    assert {lane_of("user-1", 4) for _ in range(10)} == {lane_of("user-1", 4)}
    assert {lane_of(f"user-{i}", 4) for i in range(100)} == {0, 1, 2, 3}
    assert lane_of("anything", 1) == 0


def test_a_stream_failure_record_names_the_batch_not_its_data():
    spec, _ = parse_trigger(
        {"type": "stream", "source": "redis://h/0?stream=clicks", "on_failure": "mlambda://f"},
        "t",
    )
    trigger = Trigger("id", "fn", "api", spec, True, 0.0, 0.0)
    records = [
        StreamRecord("k", "1-0", b"secret", 1000.0, "shardId-000000000000"),
        StreamRecord("k", "2-0", b"secret", 1001.0, "shardId-000000000000"),
    ]
    record = failure_record(trigger, records, "RetryAttemptsExhausted", 3, "eu-west-1")
    info = record["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == ("1-0", "2-0")
    assert info["batchSize"] == 2
    assert info["streamArn"] == "arn:aws:kinesis:eu-west-1:000000000000:stream/clicks"
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert "secret" not in json.dumps(record)


def _message(n: int) -> QueueMessage:
    return QueueMessage(str(n), b"{}", str(n), 0.0, 0.0)


def test_a_buffer_gives_what_it_has_at_once_without_a_window():
    async def scenario() -> tuple[int, int]:
        buffer: asyncio.Queue[QueueMessage] = asyncio.Queue()
        for n in range(5):
            buffer.put_nowait(_message(n))
        first = await collect(buffer, 3, 0.0, 1.0)
        second = await collect(buffer, 10, 0.0, 1.0)
        return len(first), len(second)

    assert asyncio.run(scenario()) == (3, 2)


def test_a_window_waits_for_more_and_an_empty_buffer_waits_then_gives_nothing():
    async def scenario() -> tuple[int, int]:
        buffer: asyncio.Queue[QueueMessage] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        buffer.put_nowait(_message(0))
        loop.call_later(0.05, buffer.put_nowait, _message(1))
        windowed = await collect(buffer, 10, 0.3, 1.0)
        empty = await collect(buffer, 10, 0.0, 0.05)
        return len(windowed), len(empty)

    assert asyncio.run(scenario()) == (2, 0)
