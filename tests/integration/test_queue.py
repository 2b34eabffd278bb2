"""The queue contract, run against every backend: the embedded SQLite file, Redis Streams and
NATS JetStream (the real services on this machine). Delays are real: a broker keeps its own time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mlambda.errors import NotFound
from mlambda.events.backends import open_queue
from mlambda.events.queue import FAILED, QUEUED, RUNNING, SUCCEEDED, Queue, Record
from mlambda.events.queues import PlatformQueues

from .brokers import drop_nats, drop_redis, new_prefix, require_nats, require_redis

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "redis", "nats"])
async def queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Queue]:
    prefix = new_prefix()
    if request.param == "sqlite":
        url = "sqlite:"
    elif request.param == "redis":
        url = f"{require_redis()}?prefix={prefix}"
    else:
        url = f"{await require_nats()}?prefix={prefix}"
    backend = open_queue(url, tmp_path, consumer="test")
    yield backend
    await backend.close()
    if request.param == "redis":
        await drop_redis(prefix)
    elif request.param == "nats":
        await drop_nats(prefix)


def _record(id: str, function: str = "f", at: float | None = None, **fields: object) -> Record:
    at = time.time() if at is None else at
    values: dict[str, object] = {"enqueued_at": at, "updated_at": at, **fields}
    return Record(id=id, function=function, payload=b'{"n": 1}', **values)  # type: ignore[arg-type]


async def test_put_then_lease_runs_the_oldest_and_counts_the_attempt(queue):
    now = time.time() - 10
    await queue.put(_record("old", at=now))
    await queue.put(_record("new", at=now + 0.001))
    leased = await queue.lease(time.time(), 60, set())
    assert leased is not None and leased.id == "old"
    assert leased.state == RUNNING and leased.attempts == 1 and leased.payload == b'{"n": 1}'
    assert (await queue.get("old")).state == RUNNING
    assert (await queue.lease(time.time(), 60, set())).id == "new"
    assert await queue.lease(time.time(), 60, set()) is None  # both leased


async def test_lease_skips_functions_that_are_full(queue):
    now = time.time() - 10
    await queue.put(_record("a", function="busy", at=now))
    await queue.put(_record("b", function="free", at=now + 0.001))
    assert (await queue.lease(time.time(), 60, {"busy"})).id == "b"
    assert await queue.next_visible(time.time(), {"busy"}) is None
    due = await queue.next_visible(time.time(), set())
    assert due is not None and due <= time.time()


async def test_ack_retry_release_and_end(queue):
    for name in "abcd":
        await queue.put(_record(name))
    a, b, c, d = [await queue.lease(time.time(), 60, set()) for _ in range(4)]
    start = time.time()
    await queue.ack(a.id, start, b'{"ok": true}', "$LATEST")
    await queue.retry(b.id, start, 1.5, {"errorType": "ValueError"})
    await queue.release(c.id, start, 0.3)
    await queue.end(d.id, start, FAILED, {"errorType": "ValueError"})
    done = await queue.get(a.id)
    assert done.state == SUCCEEDED and done.result == b'{"ok": true}' and done.finished_at
    assert done.version == "$LATEST"
    retried = await queue.get(b.id)
    assert retried.state == QUEUED and retried.attempts == 1
    assert retried.error == {"errorType": "ValueError"}
    assert (await queue.get(c.id)).attempts == 0  # no capacity: not an attempt
    ended = await queue.get(d.id)
    assert ended.state == FAILED and ended.error == {"errorType": "ValueError"}
    # b is hidden until its delay passes; c after 0.3 s.
    assert await queue.lease(time.time(), 60, set()) is None
    assert await queue.next_visible(time.time(), set()) == pytest.approx(start + 0.3, abs=0.1)
    await asyncio.sleep(start + 0.4 - time.time())
    assert (await queue.lease(time.time(), 60, set())).id == c.id
    assert await queue.next_visible(time.time(), set()) == pytest.approx(start + 1.5, abs=0.1)
    assert await queue.lease(time.time(), 60, set()) is None
    await asyncio.sleep(start + 1.6 - time.time())
    again = await queue.lease(time.time(), 60, set())
    assert again.id == b.id and again.attempts == 2


async def test_a_finished_event_is_not_changed_by_a_late_outcome(queue):
    await queue.put(_record("a"))
    leased = await queue.lease(time.time(), 60, set())
    await queue.ack(leased.id, time.time(), b"1", "$LATEST")
    await queue.retry(leased.id, time.time(), 0.0, {"errorType": "Late"})
    await queue.end(leased.id, time.time(), FAILED, {"errorType": "Late"})
    assert (await queue.get("a")).state == SUCCEEDED
    assert await queue.lease(time.time(), 60, set()) is None


async def test_recover_requeues_what_a_crash_left_running(queue):
    await queue.put(_record("a"))
    await queue.put(_record("b"))
    await queue.lease(time.time(), 60, set())
    assert await queue.recover(time.time()) == 1
    assert (await queue.get("a")).state == QUEUED
    leased = [await queue.lease(time.time(), 60, set()) for _ in range(2)]
    assert sorted((r.id, r.attempts) for r in leased) == [("a", 2), ("b", 1)]


async def test_a_lease_not_ended_within_its_visibility_timeout_is_leased_again(queue):
    await queue.put(_record("a"))
    first = await queue.lease(time.time(), 0.5, set())
    assert first.id == "a" and await queue.lease(time.time(), 0.5, set()) is None
    await asyncio.sleep(1.6)  # the holder neither acked nor gave it back
    again = await queue.lease(time.time(), 60, set())
    assert again is not None and again.id == "a" and again.attempts == 2
    await queue.ack(again.id, time.time(), b"{}", "$LATEST")
    assert (await queue.get("a")).state == SUCCEEDED


async def test_an_idempotency_key_returns_the_first_record(queue):
    now = time.time()
    first = await queue.put(_record("a", idempotency_key="k", at=now))
    second = await queue.put(_record("b", idempotency_key="k", at=now + 10))
    assert second.id == first.id == "a"
    other_function = await queue.put(_record("c", function="g", idempotency_key="k", at=now))
    assert other_function.id == "c"
    later = await queue.put(_record("d", idempotency_key="k", at=now + 601))
    assert later.id == "d"  # past the window: a new event
    assert {r.id for r in await queue.list(None, None, 10)} == {"a", "c", "d"}


async def test_list_and_depth(queue):
    now = time.time() - 10
    await queue.put(_record("a", function="f", at=now))
    await queue.put(_record("b", function="f", at=now + 1))
    await queue.put(_record("c", function="g", at=now + 2))
    leased = await queue.lease(time.time(), 60, {"g"})
    await queue.ack(leased.id, time.time(), b"{}", "$LATEST")
    assert [r.id for r in await queue.list("f", None, 10)] == ["b", "a"]
    assert [r.id for r in await queue.list(None, QUEUED, 10)] == ["c", "b"]
    assert [r.id for r in await queue.list(None, None, 2)] == ["c", "b"]
    depth = await queue.depth()
    assert depth == {"f": (1, pytest.approx(now + 1)), "g": (1, pytest.approx(now + 2))}


async def test_lease_many_takes_the_oldest_within_each_functions_room(queue):
    now = time.time() - 10
    for n, function in enumerate(["f", "f", "f", "g", "g"]):
        await queue.put(_record(f"{function}{n}", function=function, at=now + n / 1000))
    leased = await queue.lease_many(time.time(), 60, {"f": 2, "g": 5}.__getitem__, 10)
    assert [r.id for r in leased] == ["f0", "f1", "g3", "g4"]
    assert all(r.state == RUNNING and r.attempts == 1 for r in leased)
    assert [r.id for r in await queue.lease_many(time.time(), 60, lambda f: 5, 1)] == ["f2"]
    assert await queue.lease_many(time.time(), 60, lambda f: 5, 10) == []


async def test_outcomes_for_a_destination_stay_pending_until_delivered(queue):
    for name in "ab":
        await queue.put(_record(name))
    a, b = [await queue.lease(time.time(), 60, set()) for _ in range(2)]
    await queue.ack(a.id, time.time(), b"{}", "$LATEST", "function:audit")
    await queue.end(b.id, time.time(), FAILED, {"errorType": "X"}, "https://h.example/x")
    pending = await queue.pending_deliveries()
    assert sorted((r.id, r.destination, r.delivery) for r in pending) == [
        ("a", "function:audit", "pending"),
        ("b", "https://h.example/x", "pending"),
    ]
    await queue.delivered(a.id, True)
    await queue.delivered(b.id, False, "HTTP 500")
    assert await queue.pending_deliveries() == []
    assert (await queue.get("b")).delivery_error == "HTTP 500"


async def test_a_large_payload_and_result_are_kept_whole(queue):
    payload = b'{"x": "' + b"y" * (1024 * 1024 - 9) + b'"}'
    await queue.put(Record(id="big", function="f", payload=payload, enqueued_at=time.time()))
    leased = await queue.lease(time.time(), 60, set())
    assert leased.payload == payload
    result = b"r" * (3 * 1024 * 1024)
    await queue.ack(leased.id, time.time(), result, "$LATEST")
    assert (await queue.get("big")).result == result


async def test_platform_queues_receive_hide_and_delete_on_every_backend(queue):
    queues = PlatformQueues(queue)
    sent = await queues.send("orders", b'{"order": 1}')
    await queues.send("other", b"{}")
    [message] = await queues.receive("orders", 10, 0.5)
    assert message.record.id == sent and message.to_dict()["body"] == {"order": 1}
    assert await queues.receive("orders", 10, 0.5) == []
    await asyncio.sleep(1.6)
    [again] = await queues.receive("orders", 10, 60)
    assert again.to_dict()["receiveCount"] == 2
    with pytest.raises(NotFound):
        await queues.delete("orders", message.receipt)  # an earlier receive's handle
    await queues.delete("orders", again.receipt)
    assert set(await queues.depths()) == {"other"}
