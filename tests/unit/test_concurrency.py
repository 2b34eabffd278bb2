"""Reserved concurrency and the account's limit, as Lambda counts concurrent executions."""

from __future__ import annotations

import pytest

from mlambda.errors import InvalidSpec, Throttled
from mlambda.pool.concurrency import (
    ACCOUNT_LIMIT,
    RESERVED_LIMIT,
    Concurrency,
    check_reservation,
    min_unreserved,
    refusal,
)


@pytest.mark.parametrize(
    ("limit", "reserved", "running", "name", "expected"),
    [
        (10, {}, {}, "a", None),
        (10, {"a": 2}, {"a": 1}, "a", None),
        (10, {"a": 2}, {"a": 2}, "a", RESERVED_LIMIT),
        (10, {"a": 0}, {}, "a", RESERVED_LIMIT),  # 0: the function is stopped
        (10, {"a": 2}, {"b": 7}, "b", None),
        (10, {"a": 2}, {"b": 8}, "b", ACCOUNT_LIMIT),  # 10 - 2 reserved = 8 shared
        (10, {"a": 2}, {"a": 2, "b": 7}, "c", None),  # a's calls do not use the shared pool
        (10, {}, {"b": 5, "c": 5}, "d", ACCOUNT_LIMIT),
    ],
)
def test_when_a_call_is_throttled(limit, reserved, running, name, expected):
    assert refusal(limit, reserved, running, name) == expected


@pytest.mark.parametrize(
    ("limit", "reserved", "name", "wanted", "ok"),
    [
        (1000, {}, "a", 900, True),
        (1000, {}, "a", 901, False),  # 100 must stay unreserved
        (1000, {"b": 800}, "a", 100, True),
        (1000, {"b": 800}, "a", 101, False),
        (1000, {"a": 800}, "a", 900, True),  # replacing its own reservation
        (20, {}, "a", 18, True),  # a small limit keeps a tenth
        (20, {}, "a", 19, False),
        (1000, {}, "a", -1, False),
    ],
)
def test_a_reservation_leaves_the_others_their_minimum(limit, reserved, name, wanted, ok):
    if ok:
        check_reservation(limit, reserved, name, wanted)
    else:
        with pytest.raises(InvalidSpec):
            check_reservation(limit, reserved, name, wanted)


def test_min_unreserved():
    assert (min_unreserved(1000), min_unreserved(5000), min_unreserved(20)) == (100, 100, 2)


def test_admit_counts_and_throttles_with_the_reason_lambda_gives():
    gate = Concurrency(10)
    gate.reserve("a", 1)
    gate.admit("a")
    with pytest.raises(Throttled) as caught:
        gate.admit("a")
    assert caught.value.to_body()["Reason"] == RESERVED_LIMIT
    assert caught.value.status == 429 and caught.value.error_type == "TooManyRequestsException"
    gate.done("a")
    gate.admit("a")
    assert gate.unreserved == 9
    gate.reserve("a", None)
    assert gate.unreserved == 10 and gate.running["a"] == 1
