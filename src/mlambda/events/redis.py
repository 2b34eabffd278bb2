"""The queue on Redis Streams (``queue_url = "redis://HOST:PORT/DB"``), shared by gateways.

Each function has a stream of the events that may run now, read by the consumer group
``mlambda``: a lease is an entry delivered to this gateway's consumer (``consumer``, stable
across its restarts) and not yet acknowledged; its outcome acknowledges and deletes it in the
same script that writes the record. The record itself is a hash beside it. An event waiting out
a retry delay leaves the stream for a sorted set, and is put back once due. A lease held past
its visibility timeout (its gateway died and did not come back) is claimed by the next lease
(XCLAIM); a gateway that restarts takes its own leases back at once (``recover``, from its
consumer's pending entries). Key layout and the scripts: events/redis_scripts.py.

Durability is Redis's: an accepted event survives a restart of Redis only with its append-only
file on (``appendonly yes``; ``appendfsync always`` to survive a power cut as well). A Redis
that cannot be reached answers every call with ServiceUnavailable (a 503 for an accept).
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from mlambda.errors import ServiceUnavailable
from mlambda.events import redis_scripts as scripts
from mlambda.events.queue import FAILED, IDEMPOTENCY_WINDOW_S, SUCCEEDED, Queue, Record
from mlambda.security.ratelimit import redacted_url

T = TypeVar("T")
_TIMEOUT_S = 2.0
_FIELDS = Record.__dataclass_fields__
_BYTES = {"payload", "result"}
_INTS = {"attempts", "max_attempts"}
_FLOATS = {"max_age_s", "retry_delay_s", "enqueued_at", "updated_at", "finished_at"}
_PAGE = 200
FUNCTIONS_REFRESH_S = 1.0


class RedisQueue(Queue):
    def __init__(self, url: str, consumer: str, prefix: str | None = None) -> None:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        given = dict(query).get("prefix")
        self._prefix = prefix or given or "mlambda"
        rest = urlencode([(k, v) for k, v in query if k != "prefix"])
        self._url = urlunsplit(parts._replace(query=rest))
        self._consumer = consumer
        # One immediate retry reconnects a connection Redis closed while idle; more would only
        # stretch an accept's wait for its 503 while Redis is really down.
        self._redis = redis.asyncio.from_url(
            self._url,
            socket_timeout=_TIMEOUT_S,
            socket_connect_timeout=_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1),
        )
        self._pending: builtins.list[tuple[str, Any, asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None
        # The functions with a stream: this gateway's own puts add to it at once; other
        # gateways' are read from Redis at most every FUNCTIONS_REFRESH_S.
        self._functions: set[str] = set()
        self._functions_read = 0.0
        self._scripts = {
            name: self._redis.register_script(getattr(scripts, name))
            for name in ("PUT", "LEASE", "REQUEUE", "FINISH", "RECOVER", "NEXT_VISIBLE", "DEPTH")
        }

    async def _call(self, what: str, work: Callable[[], Awaitable[T]]) -> T:
        """``work``, with a failure of Redis said as what the user can check."""
        try:
            return await work()
        except RedisError as error:
            raise self._unavailable(what, error) from error

    def _unavailable(self, what: str, error: Exception) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"the async queue is unavailable: {what} on Redis at {redacted_url(self._url)} "
            f"failed ({type(error).__name__}: {error}); check that Redis runs and "
            "queue_url is right"
        )

    async def _script(self, name: str, *args: Any) -> Any:
        """Run a script, in one pipeline with every other script called meanwhile (one round
        trip carries many accepts and outcomes under load; each caller still gets its own
        script's answer, after Redis applied it)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((name, [self._prefix, *map(_text, args)], future))
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send())
        return await future

    async def _send(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                answers = await self._call(
                    batch[0][0].lower(), functools.partial(self._pipeline, batch)
                )
            except ServiceUnavailable as error:
                answers = [error] * len(batch)
            for (name, _, future), answer in zip(batch, answers, strict=True):
                if future.done():
                    continue
                if isinstance(answer, RedisError):
                    future.set_exception(self._unavailable(name.lower(), answer))
                elif isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

    async def _pipeline(self, batch: builtins.list[tuple[str, Any, Any]]) -> builtins.list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for name, args, _ in batch:
                await self._scripts[name](keys=[], args=args, client=pipe)
            return list(await pipe.execute(raise_on_error=False))

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    async def put(self, record: Record) -> Record:
        holder = await self._script(
            "PUT",
            record.id,
            record.function,
            record.enqueued_at,
            record.idempotency_key or "",
            IDEMPOTENCY_WINDOW_S,
            *_fields(record),
        )
        self._functions.add(record.function)
        if holder.decode() == record.id:
            return record
        first = await self.get(holder.decode())
        return first if first is not None else record

    async def lease_many(
        self, now: float, visibility_s: float, room: Callable[[str], int], limit: int
    ) -> list[Record]:
        if time.monotonic() - self._functions_read > FUNCTIONS_REFRESH_S:
            self._functions |= set(await self._members("functions"))
            self._functions_read = time.monotonic()
        rooms = [(name, room(name)) for name in sorted(self._functions)]
        pairs = [value for name, n in rooms if n > 0 for value in (name, n)]
        if not pairs:
            return []
        found = await self._script("LEASE", self._consumer, now, visibility_s, limit, *pairs)
        records = [_record(dict(zip(flat[::2], flat[1::2], strict=True))) for flat in found]
        return sorted(records, key=lambda r: r.enqueued_at)

    async def next_visible(self, now: float, exclude: set[str]) -> float | None:
        due = await self._script("NEXT_VISIBLE", *sorted(exclude))
        return float(due) if due else None

    async def ack(
        self, id: str, now: float, result: bytes, version: str, destination: str = ""
    ) -> None:
        values = {"state": SUCCEEDED, "result": result, "version": version}
        await self._finish(id, now, values, destination, drop=("error",))

    async def retry(self, id: str, now: float, delay_s: float, error: dict[str, Any]) -> None:
        await self._script("REQUEUE", id, now, now + delay_s, 0, json.dumps(error))

    async def release(self, id: str, now: float, delay_s: float) -> None:
        await self._script("REQUEUE", id, now, now + delay_s, -1, "")

    async def end(
        self, id: str, now: float, state: str, error: dict[str, Any], destination: str = ""
    ) -> None:
        assert state in (FAILED, "expired")
        await self._finish(id, now, {"state": state, "error": json.dumps(error)}, destination)

    async def _finish(
        self,
        id: str,
        now: float,
        values: dict[str, Any],
        destination: str,
        drop: tuple[str, ...] = (),
    ) -> None:
        values |= {
            "updated_at": now,
            "finished_at": now,
            "destination": destination,
            "delivery": "pending" if destination else "",
        }
        pairs = [item for pair in values.items() for item in pair]
        await self._script("FINISH", id, int(bool(destination)), len(values), *pairs, *drop)

    async def delivered(self, id: str, ok: bool, error: str = "") -> None:
        async def work() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    self._key("ev", id),
                    mapping={"delivery": "delivered" if ok else "failed", "delivery_error": error},
                )
                pipe.srem(self._key("pending"), id)
                await pipe.execute()

        await self._call("delivered", work)

    async def pending_deliveries(self) -> list[Record]:
        found = await self._records(await self._members("pending"))
        return [r for r in found if r is not None and r.delivery == "pending"]

    async def recover(self, now: float) -> int:
        return int(await self._script("RECOVER", self._consumer, now))

    async def get(self, id: str) -> Record | None:
        return (await self._records([id]))[0]

    async def list(self, function: str | None, state: str | None, limit: int) -> list[Record]:
        index = self._key("fn", function) if function is not None else self._key("all")
        found: list[Record] = []
        start = 0
        while len(found) < limit:
            ids = await self._call("list", functools.partial(self._page, index, start))
            if not ids:
                break
            for record in await self._records([i.decode() for i in ids]):
                if record is not None and state in (None, record.state):
                    found.append(record)
            start += _PAGE
        return found[:limit]

    async def _page(self, index: str, start: int) -> Any:
        return await self._redis.zrevrange(index, start, start + _PAGE - 1)

    async def depth(self) -> dict[str, tuple[int, float]]:
        flat = await self._script("DEPTH")
        return {
            flat[i].decode(): (int(flat[i + 1]), float(flat[i + 2])) for i in range(0, len(flat), 3)
        }

    async def close(self) -> None:
        await self._redis.aclose()

    async def _members(self, name: str) -> builtins.list[str]:
        key = self._key(name)
        members: Any = await self._call(name, lambda: self._redis.smembers(key))
        return sorted(member.decode() for member in members)

    async def _records(self, ids: builtins.list[str]) -> builtins.list[Record | None]:
        async def work() -> builtins.list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for id in ids:
                    pipe.hgetall(self._key("ev", id))
                return list(await pipe.execute())

        if not ids:
            return []
        return [_record(h) if h else None for h in await self._call("read", work)]


def _text(value: Any) -> Any:
    """A script argument: bytes as they are, floats exactly, the rest as text."""
    if isinstance(value, bytes | str):
        return value
    return repr(value) if isinstance(value, float) else str(value)


def _fields(record: Record) -> list[Any]:
    """The record as hash field/value pairs (a None field is left out)."""
    pairs: list[Any] = []
    for name in _FIELDS:
        value = getattr(record, name)
        if value is None:
            continue
        pairs += [name, json.dumps(value) if name == "error" else _text(value)]
    return pairs


def _record(stored: dict[bytes, bytes]) -> Record:
    values: dict[str, Any] = {}
    for raw, value in stored.items():
        name = raw.decode()
        if name not in _FIELDS:
            continue  # visible_at, lease_until, entry: the queue's own
        if name in _BYTES:
            values[name] = value
        elif name in _INTS:
            values[name] = int(value)
        elif name in _FLOATS:
            values[name] = float(value)
        elif name == "error":
            values[name] = json.loads(value)
        else:
            values[name] = value.decode()
    return Record(**values)
