"""The async queue's pure parts, by table: the retry and expiry rules, the config's checks and
the destination record (the contract of every backend: tests/integration/test_queue.py)."""

from __future__ import annotations

import random

import pytest

from mlambda.errors import InvalidSpec
from mlambda.events.destinations import destination_record
from mlambda.events.queue import (
    EXPIRED,
    FAILED,
    SUCCEEDED,
    Record,
    after_failure,
    backoff,
)
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


BASE = '[function]\nname = "scorer"\nhandler = "app:handler"\n[function.async]\n'


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("maximum_retry_attempts = 3\n", "maximum_retry_attempts must be between 0 and 2"),
        ("maximum_event_age_s = 30\n", "maximum_event_age_s must be between 60 and 21600"),
        ("retry_delay_s = 0\n", "retry_delay_s must be between"),
        ('on_success = "scorer2"\n', "must be 'function:NAME', 'mlambda://QUEUE' or an http"),
        ('on_success = "mlambda://bad.name"\n', "must be 'function:NAME', 'mlambda://QUEUE'"),
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
    spec = parse_spec(BASE + 'on_failure = "mlambda://scorer-failures"\n')
    assert spec.async_ is not None and spec.async_.on_failure == "mlambda://scorer-failures"


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
