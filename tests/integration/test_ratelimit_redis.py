"""RedisLimiter against the real Redis: shared limits, expiry, and a Redis that is not there."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable

import anyio
import pytest
import redis
import redis.asyncio

from mlambda.errors import ServiceUnavailable
from mlambda.security.ratelimit import Rate, RedisLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The test Redis; without it the tests skip locally but fail in CI, where it must run."""
    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1) as client:
            client.ping()
    except redis.RedisError as error:
        reason = f"Redis is not reachable at {REDIS_URL} ({error}); start redis-server"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return REDIS_URL


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own, whose keys are deleted afterwards."""
    prefix = f"mlambda:test:rl:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.asyncio.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def gateway(redis_url: str, prefix: str) -> AsyncIterator[Callable[[], RedisLimiter]]:
    """Makes RedisLimiters on this test's prefix, each standing for one gateway."""
    limiters: list[RedisLimiter] = []

    def make() -> RedisLimiter:
        limiters.append(RedisLimiter(redis_url, prefix=prefix))
        return limiters[-1]

    yield make
    for limiter in limiters:
        await limiter.close()


async def test_the_burst_is_allowed_then_a_refusal_says_when_within_one_over_rate(gateway):
    limiter = gateway()
    rate = Rate(per_second=2, burst=3)
    assert [await limiter.allow("key", rate) for _ in range(3)] == [0.0, 0.0, 0.0]
    retry_after = await limiter.allow("key", rate)
    assert 0 < retry_after <= 1 / rate.per_second
    assert await limiter.allow("other key", rate) == 0.0


async def test_a_refused_key_is_allowed_again_after_retry_after(gateway):
    limiter = gateway()
    rate = Rate(per_second=10, burst=1)
    assert await limiter.allow("key", rate) == 0.0
    retry_after = await limiter.allow("key", rate)
    assert 0 < retry_after <= 0.1
    await anyio.sleep(retry_after + 0.02)
    assert await limiter.allow("key", rate) == 0.0


async def test_two_gateways_share_one_limit_per_key(gateway):
    first, second = gateway(), gateway()
    rate = Rate(per_second=0.5, burst=4)
    answers = [await limiter.allow("key", rate) for limiter in [first, second] * 3]
    assert answers[:4] == [0.0] * 4
    assert all(0 < retry_after <= 2 for retry_after in answers[4:])


async def test_a_cost_takes_that_many_tokens(gateway):
    limiter = gateway()
    rate = Rate(per_second=1, burst=5)
    assert await limiter.allow("key", rate, cost=3) == 0.0
    assert 0.9 < await limiter.allow("key", rate, cost=3) <= 1.0
    assert await limiter.allow("key", rate, cost=2) == 0.0


async def test_a_key_expires_once_its_bucket_would_be_full_again(gateway, prefix, redis_url):
    limiter = gateway()
    await limiter.allow("slow", Rate(per_second=1, burst=10))
    await limiter.allow("fast", Rate(per_second=100, burst=1))
    client = redis.asyncio.from_url(redis_url)
    try:
        assert 0 < await client.pttl(prefix + "slow") <= 1000
        await anyio.sleep(0.05)
        assert await client.exists(prefix + "fast") == 0
    finally:
        await client.aclose()


async def test_an_unreachable_redis_is_service_unavailable_without_its_password():
    limiter = RedisLimiter("redis://:hunter2@127.0.0.1:1/0")
    try:
        with pytest.raises(ServiceUnavailable) as raised:
            await limiter.allow("key", Rate(1, 1))
    finally:
        await limiter.close()
    assert raised.value.status == 503
    assert "redis://:***@127.0.0.1:1/0" in raised.value.message
    assert "hunter2" not in str(raised.value)


async def test_a_cost_above_the_burst_is_refused_before_asking_redis():
    limiter = RedisLimiter("redis://127.0.0.1:1/0")
    with pytest.raises(ValueError, match=r"0\.\.burst"):
        await limiter.allow("key", Rate(1, 2), cost=3)
    await limiter.close()
