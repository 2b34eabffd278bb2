"""Token buckets, the failure policy and the in-process limiter, all on a fake clock."""

from __future__ import annotations

import pytest

from mlambda.security.ratelimit import (
    Bucket,
    FailureCounter,
    MemoryLimiter,
    Rate,
    failure_policy,
    redacted_url,
    take,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("bucket", "rate", "now", "cost", "after", "retry_after"),
    [
        pytest.param(None, Rate(1, 5), 10.0, 1, Bucket(4, 10.0), 0.0, id="new-bucket-starts-full"),
        pytest.param(Bucket(0, 0.0), Rate(2, 5), 1.0, 1, Bucket(1, 1.0), 0.0, id="refill"),
        pytest.param(Bucket(0, 0.0), Rate(1, 3), 100.0, 1, Bucket(2, 100.0), 0.0, id="cap-burst"),
        pytest.param(Bucket(0.5, 0.0), Rate(2, 5), 0.0, 1, Bucket(0.5, 0.0), 0.25, id="refusal"),
        pytest.param(Bucket(5, 0.0), Rate(1, 5), 0.0, 3, Bucket(2, 0.0), 0.0, id="cost-3-taken"),
        pytest.param(Bucket(2, 0.0), Rate(1, 5), 0.0, 3, Bucket(2, 0.0), 1.0, id="cost-3-refused"),
        pytest.param(Bucket(0, 0.0), Rate(1, 5), 0.0, 0, Bucket(0, 0.0), 0.0, id="cost-0-free"),
        pytest.param(Bucket(1, 10.0), Rate(1, 5), 5.0, 1, Bucket(0, 5.0), 0.0, id="backwards-ok"),
        pytest.param(Bucket(0, 10.0), Rate(1, 5), 5.0, 1, Bucket(0, 5.0), 1.0, id="backwards-no"),
        pytest.param(Bucket(0, 0.0), Rate(0.5, 1), 1.0, 1, Bucket(0.5, 1.0), 1.0, id="half-per-s"),
        pytest.param(Bucket(0, 0.0), Rate(0.5, 1), 2.0, 1, Bucket(0, 2.0), 0.0, id="half-per-s-2s"),
    ],
)
def test_take_refills_since_the_last_call_and_takes_the_cost_or_says_when(
    bucket, rate, now, cost, after, retry_after
):
    got, waited = take(bucket, rate, now, cost)
    assert (got.tokens, got.updated) == (pytest.approx(after.tokens), after.updated)
    assert waited == pytest.approx(retry_after)


@pytest.mark.parametrize(
    ("rate", "cost"), [(Rate(1, 1), 1), (Rate(0.5, 2), 2), (Rate(3, 10), 2.5), (Rate(7, 1), 0.3)]
)
def test_a_refused_request_is_allowed_once_retry_after_has_passed(rate, cost):
    bucket, _ = take(None, rate, 0.0, rate.burst)
    bucket, retry_after = take(bucket, rate, 0.0, cost)
    assert retry_after > 0
    _, retry_again = take(bucket, rate, retry_after, cost)
    assert retry_again == 0.0


@pytest.mark.parametrize(
    ("per_second", "burst"),
    [(0, 1), (-1, 1), (1, 0.5), (float("inf"), 1), (1, float("inf")), (float("nan"), 1)],
)
def test_a_rate_that_could_never_work_is_refused(per_second, burst):
    with pytest.raises(ValueError, match="rate"):
        Rate(per_second, burst)


@pytest.mark.parametrize("cost", [-1, 6])
def test_a_cost_outside_zero_to_burst_is_refused(cost):
    with pytest.raises(ValueError, match=r"0\.\.burst \(5\)"):
        take(None, Rate(1, 5), 0.0, cost)


FAILURE_PRICES = {
    **{n: (0.0, False) for n in range(1, 6)},
    6: (0.1, False),
    7: (0.2, False),
    8: (0.4, False),
    9: (0.8, False),
    10: (1.6, False),
    **{n: (2.0, False) for n in range(11, 20)},
    **{n: (0.0, True) for n in range(20, 26)},
}


@pytest.mark.parametrize(("failures", "price"), sorted(FAILURE_PRICES.items()))
def test_failures_are_free_then_slowed_doubling_then_refused(failures, price):
    delay, refuse = failure_policy(failures)
    assert (delay, refuse) == (pytest.approx(price[0]), price[1])


def test_the_failure_counter_counts_within_the_window_and_resets_after_it():
    clock = FakeClock()
    counter = FailureCounter(window_s=60, clock=clock)
    assert [counter.record("10.0.0.1") for _ in range(3)] == [1, 2, 3]
    clock.now += 45
    assert (counter.count("10.0.0.1"), counter.retry_after("10.0.0.1")) == (3, 15)
    assert (counter.count("10.0.0.2"), counter.retry_after("10.0.0.2")) == (0, 0.0)
    clock.now += 15
    assert (counter.count("10.0.0.1"), counter.retry_after("10.0.0.1")) == (0, 0.0)
    assert counter.record("10.0.0.1") == 1


def test_the_failure_counter_forgets_a_window_when_the_clock_goes_back():
    clock = FakeClock()
    counter = FailureCounter(window_s=60, clock=clock)
    counter.record("10.0.0.1")
    clock.now -= 1
    assert (counter.count("10.0.0.1"), counter.retry_after("10.0.0.1")) == (0, 0.0)


def test_the_failure_counter_drops_the_least_recently_failing_address():
    counter = FailureCounter(clock=FakeClock(), max_addresses=2)
    counter.record("a")
    counter.record("b")
    counter.record("a")
    counter.record("c")
    assert {address: counter.count(address) for address in "abc"} == {"a": 2, "b": 0, "c": 1}


@pytest.mark.anyio
async def test_memory_limiter_allows_the_burst_then_refuses_then_recovers_after_one_over_rate():
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)
    rate = Rate(per_second=4, burst=3)
    assert [await limiter.allow("key", rate) for _ in range(4)] == [0.0, 0.0, 0.0, 0.25]
    clock.now += 0.25
    assert [await limiter.allow("key", rate) for _ in range(2)] == [0.0, 0.25]
    assert await limiter.allow("other key", rate) == 0.0


@pytest.mark.anyio
async def test_memory_limiter_forgets_the_least_recently_used_key_beyond_max_keys():
    limiter = MemoryLimiter(clock=FakeClock(), max_keys=2)
    rate = Rate(per_second=1, burst=1)
    for key in ["a", "b", "a", "c"]:
        await limiter.allow(key, rate)
    # "a" was used again after "b", so "b" went and starts full again; "a" is still empty.
    assert [await limiter.allow(key, rate) for key in "ab"] == [1.0, 0.0]


@pytest.mark.anyio
async def test_memory_limiter_close_is_idempotent_and_allow_after_it_is_an_error():
    limiter = MemoryLimiter()
    await limiter.close()
    await limiter.close()
    with pytest.raises(RuntimeError, match="closed"):
        await limiter.allow("key", Rate(1, 1))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://gw:hunter2@cache", "rediss://gw:***@cache"),
        ("redis://:p@ss:w@cache", "redis://:***@cache"),
        ("redis://cache/0?password=hunter2&db=1", "redis://cache/0?password=***&db=1"),
        ("unix:///run/redis.sock?password=hunter2", "unix:///run/redis.sock?password=***"),
    ],
)
def test_a_redis_url_is_shown_without_its_password(url, shown):
    assert redacted_url(url) == shown
