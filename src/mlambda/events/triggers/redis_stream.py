"""A stream trigger on a Redis stream (``redis://HOST:6379/DB?stream=NAME``): XREAD from the
trigger's checkpoint. An entry's ``partitionKey`` (or ``key``) field is its partition key
(none: ""), its ``data`` (or ``body``) field the record's data; an entry with neither data
field is sent as a JSON object of all its fields."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from mlambda.events.shapes import StreamRecord
from mlambda.events.triggers.broker import BrokerError
from mlambda.events.triggers.redis_queue import BLOCK_MAX_MS, entry_time
from mlambda.events.triggers.stream_broker import SHARD, StreamReader

LAST_SEQ = 2**64 - 1


class RedisStreamReader(StreamReader):
    broker = "redis"

    def __init__(self, url: str, name: str) -> None:
        super().__init__(name)
        self.url = url.split("?", 1)[0]
        self._redis: Any = None

    async def open(self) -> None:
        self._redis = aioredis.Redis.from_url(self.url, socket_timeout=None)
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise BrokerError(str(exc)) from exc

    async def start(self, starting_position: str, timestamp: float | None) -> str:
        if starting_position == "trim_horizon":
            return "0-0"
        if starting_position == "at_timestamp":
            millis = int((timestamp or 0) * 1000)
            return f"{millis - 1}-{LAST_SEQ}" if millis > 0 else "0-0"
        try:
            info = await self._redis.xinfo_stream(self.name)
        except ResponseError:  # no such stream yet: everything it will hold is new
            return "0-0"
        except RedisError as exc:
            raise BrokerError(str(exc)) from exc
        return _text(info["last-generated-id"])

    async def read(self, after: str, most: int, wait_s: float) -> list[StreamRecord]:
        block = max(1, min(BLOCK_MAX_MS, int(wait_s * 1000)))
        try:
            reply = await self._redis.xread({self.name: after}, count=most, block=block)
        except RedisError as exc:
            raise BrokerError(str(exc)) from exc
        entries = reply[0][1] if reply else []
        return [_record(_text(entry_id), fields) for entry_id, fields in entries]

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()


def _record(entry_id: str, fields: dict[Any, Any]) -> StreamRecord:
    decoded = {_text(k): v for k, v in fields.items()}
    key = decoded.pop("partitionKey", None) or decoded.pop("key", None) or b""
    data = decoded.get("data", decoded.get("body"))
    if data is None:
        data = json.dumps({k: _text(v) for k, v in decoded.items()}).encode()
    return StreamRecord(
        partition_key=_text(key),
        sequence=entry_id,
        data=data if isinstance(data, bytes) else str(data).encode(),
        arrived_at=entry_time(entry_id),
        shard=SHARD,
    )


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
