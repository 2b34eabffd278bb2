"""The async queue: the retry and expiry rules (by table), and the contract every backend keeps,
run against each backend (the embedded SQLite one here; brokers join the same suite)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from mlambda.errors import InvalidSpec
from mlambda.events.destinations import destination_record
from mlambda.events.queue import (
    EXPIRED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Queue,
    Record,
    after_failure,
    backoff,
)
from mlambda.events.sqlite import SqliteQueue
from mlambda.spec import parse_spec

T0 = 1_000_000.0
pytestmark = pytest.mark.anyio


def _record(id: str = "a", function: str = "f", **fields: object) -> Record:
    values: dict[str, object] = {"enqueued_at": T0, "updated_at": T0, **fields}
    return Record(id=id, function=function, payload=b'{"n": 1}', **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "age", "max_age", "action"),
    [
        (1, 3, 0, 21600, "retry"),
        (2, 3, 0, 21600, "retry"),
        (3, 3, 0, 21600, FAILED),
        (1, 1, 0, 21600, FAILED),
        (1, 3, 21600, 21600, EXPIRED),
        (1, 3, 59.5, 60, EXPIRED),  # the retry would be due after the event's age ran out
    ],
)
def test_after_a_failed_attempt(attempts, max_attempts, age, max_age, action):
    record = _record(attempts=attempts, max_attempts=max_attempts, max_age_s=max_age)
    decision = after_failure(record, T0 + age, random.Random(1))
    assert decision.action == action


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.8, 1.2), (2, 1.6, 2.4), (3, 3.2, 4.8)])
def test_backoff_doubles_with_jitter(attempt, low, high):
    delays = {backoff(attempt, 1.0, random.Random(seed)) for seed in range(50)}
    assert all(low <= d <= high for d in delays) and len(delays) > 1


@pytest.fixture(params=["sqlite"])
async def queue(request, tmp_path) -> AsyncIterator[Queue]:  # type: ignore[no-untyped-def]
    backend = SqliteQueue(tmp_path / "queue.db")
    yield backend
    await backend.close()


async def test_put_then_lease_runs_the_oldest_and_counts_the_attempt(queue):
    await queue.put(_record("old", enqueued_at=T0))
    await queue.put(_record("new", enqueued_at=T0 + 1))
    leased = await queue.lease(T0 + 2, 60, set())
    assert leased is not None and leased.id == "old"
    assert leased.state == RUNNING and leased.attempts == 1
    assert (await queue.lease(T0 + 2, 60, set())).id == "new"
    assert await queue.lease(T0 + 2, 60, set()) is None  # both leased


async def test_lease_skips_functions_that_are_full(queue):
    await queue.put(_record("a", function="busy"))
    await queue.put(_record("b", function="free", enqueued_at=T0 + 1))
    assert (await queue.lease(T0 + 2, 60, {"busy"})).id == "b"
    assert await queue.next_visible(T0 + 2, {"busy"}) is None
    assert await queue.next_visible(T0 + 2, set()) == T0


async def test_ack_retry_release_and_end(queue):
    for name in "abcd":
        await queue.put(_record(name))
    a, b, c, d = [await queue.lease(T0, 60, set()) for _ in range(4)]
    await queue.ack(a.id, T0 + 1, b'{"ok": true}', "$LATEST")
    await queue.retry(b.id, T0 + 1, 5.0, {"errorType": "ValueError"})
    await queue.release(c.id, T0 + 1, 0.2)
    await queue.end(d.id, T0 + 1, FAILED, {"errorType": "ValueError"})
    done = await queue.get(a.id)
    assert done.state == SUCCEEDED and done.result == b'{"ok": true}' and done.finished_at
    retried = await queue.get(b.id)
    assert retried.state == QUEUED and retried.attempts == 1 and retried.error
    assert (await queue.get(c.id)).attempts == 0  # no capacity: not an attempt
    assert (await queue.get(d.id)).state == FAILED
    # b is hidden until its delay passes; c after 0.2 s.
    assert (await queue.lease(T0 + 1.1, 60, set())) is None
    assert (await queue.lease(T0 + 1.3, 60, set())).id == c.id
    assert await queue.next_visible(T0 + 1.3, set()) == pytest.approx(T0 + 6)
    assert (await queue.lease(T0 + 6, 60, set())).id == b.id


async def test_recover_requeues_what_a_crash_left_running(queue):
    await queue.put(_record("a"))
    await queue.lease(T0, 60, set())
    assert await queue.recover(T0 + 5) == 1
    again = await queue.lease(T0 + 5, 60, set())
    assert again.id == "a" and again.attempts == 2


async def test_an_idempotency_key_returns_the_first_record(queue):
    first = await queue.put(_record("a", idempotency_key="k"))
    second = await queue.put(_record("b", idempotency_key="k", enqueued_at=T0 + 10))
    assert second.id == first.id == "a"
    other_function = await queue.put(_record("c", function="g", idempotency_key="k"))
    assert other_function.id == "c"
    later = await queue.put(_record("d", idempotency_key="k", enqueued_at=T0 + 601))
    assert later.id == "d"  # past the window: a new event


async def test_list_and_depth(queue):
    await queue.put(_record("a", function="f", enqueued_at=T0))
    await queue.put(_record("b", function="f", enqueued_at=T0 + 1))
    await queue.put(_record("c", function="g", enqueued_at=T0 + 2))
    leased = await queue.lease(T0 + 3, 60, {"g"})
    await queue.ack(leased.id, T0 + 4, b"{}", "$LATEST")
    assert [r.id for r in await queue.list("f", None, 10)] == ["b", "a"]
    assert [r.id for r in await queue.list(None, QUEUED, 10)] == ["c", "b"]
    assert await queue.depth() == {"f": (1, T0 + 1), "g": (1, T0 + 2)}


BASE = '[function]\nname = "scorer"\nhandler = "app:handler"\n[function.async]\n'


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("maximum_retry_attempts = 3\n", "maximum_retry_attempts must be between 0 and 2"),
        ("maximum_event_age_s = 30\n", "maximum_event_age_s must be between 60 and 21600"),
        ("retry_delay_s = 0\n", "retry_delay_s must be between"),
        ('on_success = "scorer2"\n', "must be 'function:NAME' or an http(s) URL"),
        ('on_failure = "function:scorer"\n', "names the function itself"),
        ("retries = 1\n", "unknown field function.async.retries"),
    ],
)
def test_a_bad_async_section_is_refused_naming_the_field(table, message):
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(BASE + table)
    assert message in str(caught.value)


def test_a_good_async_section_is_read():
    spec = parse_spec(BASE + 'on_success = "function:audit"\non_failure = "https://h.example/x"\n')
    assert spec.async_ is not None and spec.async_.on_success == "function:audit"


@pytest.mark.parametrize(
    ("state", "condition", "error"),
    [
        (SUCCEEDED, "Success", False),
        (FAILED, "RetriesExhausted", True),
        (EXPIRED, "EventAgeExceeded", True),
    ],
)
def test_the_destination_record_has_lambdas_shape(state, condition, error):
    record = _record(
        state=state,
        attempts=3,
        finished_at=T0 + 0.25,
        version="$LATEST",
        result=b'{"score": 1}' if not error else None,
        error={"errorType": "ValueError", "errorMessage": "x"} if error else None,
    )
    shaped = destination_record(record, "eu-west-1")
    assert shaped["version"] == "1.0" and shaped["timestamp"].endswith(".250Z")
    assert shaped["requestContext"] == {
        "requestId": "a",
        "functionArn": "arn:aws:lambda:eu-west-1:000000000000:function:f:$LATEST",
        "condition": condition,
        "approximateInvokeCount": 3,
    }
    assert shaped["requestPayload"] == {"n": 1}
    assert ("functionError" in shaped["responseContext"]) is error
    expected = {"errorType": "ValueError", "errorMessage": "x"} if error else {"score": 1}
    assert shaped["responsePayload"] == expected


async def test_lease_many_takes_the_oldest_within_each_functions_room(queue):
    for n, function in enumerate(["f", "f", "f", "g", "g"]):
        await queue.put(_record(f"{function}{n}", function=function, enqueued_at=T0 + n))
    leased = await queue.lease_many(T0 + 9, 60, {"f": 2, "g": 5}.__getitem__, 10)
    assert [r.id for r in leased] == ["f0", "f1", "g3", "g4"]
    assert all(r.state == RUNNING and r.attempts == 1 for r in leased)
    assert [r.id for r in await queue.lease_many(T0 + 9, 60, lambda f: 5, 1)] == ["f2"]
    assert await queue.lease_many(T0 + 9, 60, lambda f: 5, 10) == []
