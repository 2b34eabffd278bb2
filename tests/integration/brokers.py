"""The brokers the async queue's tests run against: the machine's Redis and NATS (JetStream).

Without one, its tests skip locally and fail in CI, where both must run. Each test works under a
prefix of its own, removed afterwards."""

from __future__ import annotations

import os
import uuid

import pytest
import redis
import redis.asyncio

REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_URL = "nats://127.0.0.1:4222"


def _absent(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def require_redis() -> str:
    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1) as client:
            client.ping()
    except redis.RedisError as error:
        _absent(f"Redis is not reachable at {REDIS_URL} ({error}); start redis-server")
    return REDIS_URL


async def require_nats() -> str:
    import nats

    try:
        client = await nats.connect(NATS_URL, connect_timeout=1, max_reconnect_attempts=0)
        await client.jetstream().account_info()
        await client.close()
    except Exception as error:
        _absent(
            f"NATS with JetStream is not reachable at {NATS_URL} ({error!r}); start nats-server -js"
        )
    return NATS_URL


def new_prefix() -> str:
    return f"mlt{uuid.uuid4().hex[:12]}"


async def drop_redis(prefix: str) -> None:
    client = redis.asyncio.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def drop_nats(prefix: str) -> None:
    """Every stream (KV buckets and object stores are streams too) named with ``prefix``."""
    import nats

    client = await nats.connect(NATS_URL, connect_timeout=1, max_reconnect_attempts=0)
    js = client.jetstream()
    for info in await js.streams_info():
        if prefix.upper() in info.config.name.upper():
            await js.delete_stream(info.config.name)
    await client.close()
