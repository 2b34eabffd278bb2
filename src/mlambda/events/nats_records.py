"""The NATS queue's records in its KV bucket: the keys, the JSON codec, changes by
compare-and-set, the edits an outcome makes, and the payload and result bodies, stored in
chunks below the server's max_payload.

A record is a JSON document under ``r.<id>`` (every field of ``Record`` but the bodies, plus
``visible_at``, ``lease_until``, ``gen`` and the bodies' chunk counts); a small body is kept
inside it (base64, ``<payload|result>_b64``: no extra write at accept, no extra read at lease),
a larger one under ``b.<id>.<p|r>.<n>``; an idempotency key's first event under ``k.<hash>``.

The unfinished records (and those with a delivery pending) are kept in memory as last written
or read, with their revisions, so a lease or an outcome writes without reading first (one
gateway per prefix). Every write is still a compare-and-set: a copy that another writer made
stale fails it, and the record is read again. The writes (and the events' messages) go
through one ``Writer``: what nats-py's ``kv.update`` sends, without a timer and an inbox token
per request, which at one write per lease and one per outcome was much of a drain's CPU time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
from collections.abc import Callable
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import (
    APIError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoStreamResponseError,
)
from nats.js.kv import KeyValue

from mlambda.events.queue import IDEMPOTENCY_WINDOW_S, QUEUED, RUNNING, Record

SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
FIELDS = [name for name in Record.__dataclass_fields__ if name not in ("payload", "result")]
Doc = dict[str, Any]
Entry = tuple[Doc, int]  # a record and its revision
# Bodies up to this size are kept inside the record (rewritten with each change of it).
INLINE = 4096
# The records kept in memory, at most (JSON bytes); past it, the others are read when used.
CACHE_BYTES = 64 * 1024 * 1024


def token(text: str) -> str:
    """``text`` as one subject token or key part: [A-Za-z0-9_-] as is, other bytes as =XX."""
    if SAFE.issuperset(text):  # an invocation id (a UUID), a function name: most often
        return text
    return "".join(c if c in SAFE else "".join(f"={b:02x}" for b in c.encode()) for c in text)


def record_key(id: str) -> str:
    return f"r.{token(id)}"


def claim_key(record: Record) -> str:
    """Where the first event of an idempotency key (per function) is named."""
    digest = hashlib.sha256(f"{record.function}\0{record.idempotency_key}".encode()).hexdigest()
    return f"k.{digest[:40]}"


# msgspec's codec: a record is encoded and decoded several times per event.
dumps: Callable[[Any], bytes] = msgspec.json.encode
loads: Callable[[bytes], Any] = msgspec.json.decode


def finished(now: float, state: str, destination: str, values: Doc) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        doc.update(values, state=state, updated_at=now, finished_at=now, lease_until=None)
        doc.update(destination=destination, delivery="pending" if destination else "")

    return edit


def queued(now: float, delay_s: float, values: Doc, count: int) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        doc.update(values, state=QUEUED, attempts=doc["attempts"] + count, updated_at=now)
        doc.update(visible_at=now + delay_s, lease_until=None)

    return edit


class Turn:
    """The publishes of one event-loop turn, and the timer they share."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self.futures: list[asyncio.Future[Msg]] = []
        self.left = 0
        self.timer = loop.call_later(timeout_s, self.expire)

    def expire(self) -> None:
        for future in self.futures:
            if not future.done():
                future.set_exception(nats.errors.TimeoutError())


class Writer:
    """JetStream publishes, each returning once JetStream acknowledged it (its sequence), as
    ``js.publish`` does, but without its per-request costs: the replies come to one wildcard
    inbox, matched by a counter token, and the publishes of one event-loop turn share one timer
    (nats-py's flusher already writes them out together). An error is its own caller's."""

    def __init__(self, nc: Client, timeout_s: float) -> None:
        self.nc = nc
        self.timeout_s = timeout_s
        self.inbox = ""  # subscribed on first use
        self.tokens = itertools.count()
        self.waiting: dict[str, asyncio.Future[Msg]] = {}
        self.turn: Turn | None = None  # this event-loop turn's publishes

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str] | None) -> int:
        if not self.inbox:
            inbox = f"{self.nc.new_inbox()}."
            await self.nc.subscribe(f"{inbox}*", cb=self._reply)
            self.inbox = self.inbox or inbox  # two first calls: the other's subscription idles
        token = str(next(self.tokens))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Msg] = loop.create_future()
        if (turn := self.turn) is None:
            turn = self.turn = Turn(loop, self.timeout_s)
            loop.call_soon(self._next_turn)
        turn.futures.append(future)
        turn.left += 1
        self.waiting[token] = future
        try:
            await self.nc.publish(subject, payload, reply=self.inbox + token, headers=headers)
            msg = await future
        finally:
            self.waiting.pop(token, None)
            turn.left -= 1  # the last one answered: no timer left to fire
            if not turn.left:
                turn.timer.cancel()
        if msg.headers and msg.headers.get("Status") == "503":
            raise NoStreamResponseError
        ack = loads(msg.data)
        if "error" in ack:
            if ack["error"].get("err_code") in (10071, 10164):  # wrong last sequence
                raise KeyWrongLastSequenceError(description=ack["error"].get("description"))
            raise APIError.from_error(ack["error"])
        return int(ack["seq"])

    def _next_turn(self) -> None:
        self.turn = None

    async def _reply(self, msg: Msg) -> None:
        future = self.waiting.get(msg.subject[len(self.inbox) :])
        if future is not None and not future.done():
            future.set_result(msg)


class Records:
    """The records in the bucket ``kv``; a body is cut into entries of ``chunk`` bytes."""

    def __init__(self, kv: KeyValue, writer: Writer, chunk: int, timeout_s: float) -> None:
        self.kv = kv
        self.writer = writer
        self.subject = kv._pre  # what ``kv.put`` publishes to, the key after it
        self.chunk = chunk
        self.timeout_s = timeout_s
        # id -> (the record's JSON, its revision): bytes, so that an edit that is not stored
        # leaves the copy as it was.
        self.cache: dict[str, tuple[bytes, int]] = {}
        self.cached = 0  # bytes

    def _keep(self, id: str, raw: bytes, revision: int, doc: Doc) -> None:
        """Remember what the bucket holds under ``r.<id>`` now (forget a finished record)."""
        self.forget(id)
        live = doc["state"] in (QUEUED, RUNNING) or doc.get("delivery") == "pending"
        if live and self.cached + len(raw) <= CACHE_BYTES:
            self.cache[id] = (raw, revision)
            self.cached += len(raw)

    def forget(self, id: str) -> None:
        if (gone := self.cache.pop(id, None)) is not None:
            self.cached -= len(gone[0])

    async def _put(self, key: str, value: bytes, last: int | None = None) -> int:
        """``kv.put``, or with ``last`` ``kv.update`` (a compare-and-set), through the writer."""
        headers = None if last is None else {"Nats-Expected-Last-Subject-Sequence": str(last)}
        return await self.writer.publish(self.subject + key, value, headers)

    async def entry(self, id: str) -> Entry | None:
        if (kept := self.cache.get(id)) is not None:
            return loads(kept[0]), kept[1]
        return await self.read(id)

    async def read(self, id: str) -> Entry | None:
        """The record as the bucket has it now."""
        try:
            entry = await self.kv.get(record_key(id))
        except KeyNotFoundError:
            self.forget(id)
            return None
        raw, revision = entry.value or b"{}", entry.revision or 0
        doc = loads(raw)
        self._keep(id, raw, revision, doc)
        return doc, revision

    async def change(
        self, id: str, edit: Callable[[Doc], bool], entry: Entry | None = None
    ) -> Doc | None:
        """The record as ``edit`` changed it, by compare-and-set (read again if it changed
        meanwhile); None when there is none or ``edit`` returned False (left it)."""
        for attempt in itertools.count():
            entry = entry or (await self.entry(id) if attempt == 0 else await self.read(id))
            if entry is None or not edit(entry[0]):
                return None
            raw = dumps(entry[0])
            try:
                revision = await self._put(record_key(id), raw, last=entry[1])
            except KeyWrongLastSequenceError:
                if attempt >= 2:
                    raise
                entry = None
                continue
            except BaseException:
                self.forget(id)  # stored or not: unknown, so read it again next time
                raise
            self._keep(id, raw, revision, entry[0])
            return entry[0]
        raise AssertionError("unreachable")

    async def create(self, record: Record) -> Doc:
        """A new record, queued and visible at once, its bodies stored first."""
        doc: Doc = {name: getattr(record, name) for name in FIELDS}
        doc.update(visible_at=record.enqueued_at, lease_until=None, gen=0)
        doc.update(await self.put_body(record.id, "payload", record.payload))
        doc.update(await self.put_body(record.id, "result", record.result))
        raw = dumps(doc)
        try:
            revision = await self._put(record_key(record.id), raw, last=0)
        except KeyWrongLastSequenceError:  # kv.create tells a deleted key from one there
            revision = await self.kv.create(record_key(record.id), raw)
        self._keep(record.id, raw, revision, doc)
        return doc

    async def first(self, record: Record) -> Record | None:
        """The event the record's idempotency key made within the window, if any."""
        try:
            claim = loads((await self.kv.get(claim_key(record))).value or b"{}")
        except KeyNotFoundError:
            return None
        if claim["enqueued_at"] <= record.enqueued_at - IDEMPOTENCY_WINDOW_S:
            return None
        entry = await self.entry(claim["id"])
        return await self.record(entry[0]) if entry else None

    async def claim(self, record: Record) -> None:
        """The record as the first event of its idempotency key."""
        claim = {"id": record.id, "enqueued_at": record.enqueued_at}
        await self._put(claim_key(record), dumps(claim))

    async def put_body(self, id: str, part: str, body: bytes | None) -> Doc:
        """The record's fields for its ``part`` ("payload" or "result"): the body inside when
        small, else the count of its chunks, stored (and acknowledged) first."""
        if body is None or len(body) <= INLINE:
            text = None if body is None else base64.b64encode(body).decode()
            return {f"{part}_b64": text, f"{part}_chunks": None}
        size, key = self.chunk, f"b.{token(id)}.{part[0]}"
        chunks = [body[at : at + size] for at in range(0, len(body), size)]
        await asyncio.gather(*(self._put(f"{key}.{n}", c) for n, c in enumerate(chunks)))
        return {f"{part}_b64": None, f"{part}_chunks": len(chunks)}

    async def get_body(self, doc: Doc, part: str) -> bytes | None:
        if (text := doc.get(f"{part}_b64")) is not None:
            return base64.b64decode(text)
        if (chunks := doc.get(f"{part}_chunks")) is None:
            return None
        key = f"b.{token(doc['id'])}.{part[0]}"
        found = await asyncio.gather(*(self.kv.get(f"{key}.{n}") for n in range(chunks)))
        return b"".join(entry.value or b"" for entry in found)

    async def record(self, doc: Doc) -> Record:
        payload = await self.get_body(doc, "payload")
        result = await self.get_body(doc, "result")
        return Record(**{name: doc[name] for name in FIELDS}, payload=payload or b"", result=result)

    async def records(self, docs: list[Doc]) -> list[Record]:
        return list(await asyncio.gather(*(self.record(doc) for doc in docs)))

    async def scan(self) -> list[Entry]:
        """Every record (without bodies), through a KV watcher."""
        watcher = await self.kv.watch("r.>", ignore_deletes=True, inactive_threshold=10)
        found = []
        try:
            while (entry := await watcher.updates(timeout=self.timeout_s)) is not None:
                raw, revision = entry.value or b"{}", entry.revision or 0
                doc = loads(raw)
                found.append((doc, revision))
                # Not over a newer copy: a change may have been stored while this scan ran.
                if revision > self.cache.get(doc["id"], (b"", 0))[1]:
                    self._keep(doc["id"], raw, revision, doc)
        finally:
            await watcher.stop()
        return found
