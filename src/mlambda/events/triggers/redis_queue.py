"""A queue trigger on a Redis stream, read through a consumer group (``redis://HOST/DB?stream=S
&group=G``; the group defaults to ``mlambda-FUNCTION`` and is made at the stream's start when it
does not exist, the stream too).

An entry's ``body`` field is the message body, its other fields its message attributes; an
entry with no ``body`` field is sent as a JSON object of all its fields. A message is XACKed
when done. One that failed stays pending and is claimed again (XCLAIM) after the retry delay;
one received by a consumer that died is claimed after the visibility timeout (XAUTOCLAIM), and
the trigger reads its own pending entries first when it starts (after ``serve`` was killed).
Receive counts are Redis's delivery counts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from mlambda.events.shapes import QueueMessage
from mlambda.events.triggers.broker import BrokerError, QueueBroker

BLOCK_MAX_MS = 1000
# Entries of consumers that went away are looked for this often.
AUTOCLAIM_EVERY_S = 5.0


def entry_time(entry_id: str) -> float:
    return int(entry_id.split("-", 1)[0]) / 1000


class RedisQueueBroker(QueueBroker):
    broker = "redis"

    def __init__(self, url: str, name: str, group: str, consumer: str, visibility_s: float):
        super().__init__(name, visibility_s)
        self.url = url.split("?", 1)[0]  # the stream and group are not connection options
        self.group, self.consumer = group, consumer
        self._redis: Any = None  # redis.asyncio.Redis (its stubs type replies loosely)
        self._due: list[tuple[float, str]] = []  # (when, entry id): failed, claimed again then
        # Where this consumer's pending entries (from before a restart) are read from next.
        self._pending_from: str | None = "0"
        self._pending_lock = asyncio.Lock()
        self._autoclaimed_at = 0.0
        self._first: dict[str, float] = {}

    @property
    def redis(self) -> Any:
        if self._redis is None:
            raise BrokerError("not connected")
        return self._redis

    async def open(self) -> None:
        self._redis = aioredis.Redis.from_url(self.url, socket_timeout=None)
        try:
            await self._redis.xgroup_create(self.name, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise BrokerError(str(exc)) from exc
        except RedisError as exc:
            raise BrokerError(str(exc)) from exc
        self._pending_from = "0"

    async def receive(self, most: int, window_s: float, wait_s: float) -> list[QueueMessage]:
        try:
            batch = await self._redelivered(most)
            if batch:
                return batch
            batch = await self._read(most, wait_s)
            deadline = time.monotonic() + window_s
            while batch and len(batch) < most and time.monotonic() < deadline:
                more = await self._read(most - len(batch), deadline - time.monotonic())
                if not more:
                    break
                batch += more
            return batch
        except RedisError as exc:
            raise BrokerError(str(exc)) from exc

    async def _read(self, most: int, wait_s: float) -> list[QueueMessage]:
        block = max(1, min(BLOCK_MAX_MS, int(wait_s * 1000)))
        reply = await self.redis.xreadgroup(
            self.group, self.consumer, {self.name: ">"}, count=most, block=block
        )
        entries = reply[0][1] if reply else []
        return [self._message(entry_id, fields, 1) for entry_id, fields in entries]

    async def _redelivered(self, most: int) -> list[QueueMessage]:
        """This consumer's pending entries after a restart, failed ones whose retry delay is
        over, then other consumers' entries past the visibility timeout."""
        async with self._pending_lock:
            entries: list[Any] = []
            if self._pending_from is not None:
                reply = await self.redis.xreadgroup(
                    self.group, self.consumer, {self.name: self._pending_from}, count=most
                )
                entries = reply[0][1] if reply else []
                self._pending_from = _text(entries[-1][0]) if len(entries) == most else None
            if entries:
                # Not claimed: read from the pending list, which counts no delivery.
                counts = await self._counts([_text(e[0]) for e in entries], bump=1)
                return [self._message(i, f, counts.get(_text(i), 2)) for i, f in entries if f]
        now = time.monotonic()
        due = [item for item in self._due if item[0] <= now][:most]
        if due:
            ids = [entry_id for _, entry_id in due]
            self._due = [item for item in self._due if item[1] not in ids]
            claimed = await self.redis.xclaim(self.name, self.group, self.consumer, 0, ids)
            counts = await self._counts([_text(e[0]) for e in claimed if e[1]], bump=0)
            return [self._message(i, f, counts.get(_text(i), 2)) for i, f in claimed if f]
        if now - self._autoclaimed_at >= AUTOCLAIM_EVERY_S:
            self._autoclaimed_at = now
            reply = await self.redis.xautoclaim(
                self.name,
                self.group,
                self.consumer,
                int(self.visibility_s * 1000),
                start_id="0-0",
                count=most,
            )
            claimed = [e for e in reply[1] if e[1]]
            counts = await self._counts([_text(e[0]) for e in claimed], bump=0)
            return [self._message(i, f, counts.get(_text(i), 2)) for i, f in claimed]
        return []

    async def _counts(self, ids: list[str], bump: int) -> dict[str, int]:
        if not ids:
            return {}
        rows = await self.redis.xpending_range(
            self.name,
            self.group,
            min=min(ids, key=_order),
            max=max(ids, key=_order),
            count=len(ids) * 2 + 10,
            consumername=self.consumer,
        )
        return {_text(row["message_id"]): int(row["times_delivered"]) + bump for row in rows}

    def _message(self, entry_id: Any, fields: dict[Any, Any], count: int) -> QueueMessage:
        entry_id = _text(entry_id)
        decoded = {_text(k): v for k, v in fields.items()}
        body = decoded.pop("body", None)
        if body is None:
            body = json.dumps({k: _text(v) for k, v in decoded.items()}).encode()
            decoded = {}
        first = self._first.setdefault(entry_id, time.time())
        return QueueMessage(
            id=entry_id,
            body=body if isinstance(body, bytes) else str(body).encode(),
            receipt=entry_id,
            sent_at=entry_time(entry_id),
            first_received_at=first,
            receive_count=count,
            attributes={k: _text(v) for k, v in decoded.items()},
        )

    async def ack(self, messages: Sequence[QueueMessage]) -> None:
        if messages:
            try:
                await self.redis.xack(self.name, self.group, *[m.id for m in messages])
            except RedisError as exc:
                raise BrokerError(str(exc)) from exc
            for message in messages:
                self._first.pop(message.id, None)

    async def retry(self, messages: Sequence[QueueMessage], delay_s: float) -> None:
        when = time.monotonic() + delay_s
        self._due += [(when, m.id) for m in messages]

    async def backlog(self) -> int | None:
        try:
            groups = await self.redis.xinfo_groups(self.name)
        except RedisError:
            return None
        for group in groups:
            if _text(group.get("name")) == self.group:
                lag = group.get("lag")
                return int(lag) + len(self._due) if lag is not None else None
        return None

    async def close(self) -> None:
        self._due.clear()  # still pending in the group: claimed when the trigger is back
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await asyncio.shield(redis.aclose())


def _order(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
