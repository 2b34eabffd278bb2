"""The NATS queue's records in its KV bucket: the keys, the JSON codec, changes by
compare-and-set, the edits an outcome makes, and the payload and result bodies, stored in
chunks below the server's max_payload.

A record is a JSON document under ``r.<id>`` (every field of ``Record`` but the bodies, plus
``visible_at``, ``lease_until``, ``gen`` and the bodies' chunk counts); its bodies lie under
``b.<id>.<p|r>.<n>``, and an idempotency key's first event under ``k.<hash>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from collections.abc import Callable
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from mlambda.events.queue import IDEMPOTENCY_WINDOW_S, QUEUED, Record

SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
FIELDS = [name for name in Record.__dataclass_fields__ if name not in ("payload", "result")]
Doc = dict[str, Any]
Entry = tuple[Doc, int]  # a record and its revision


def token(text: str) -> str:
    """``text`` as one subject token or key part: [A-Za-z0-9_-] as is, other bytes as =XX."""
    return "".join(c if c in SAFE else "".join(f"={b:02x}" for b in c.encode()) for c in text)


def record_key(id: str) -> str:
    return f"r.{token(id)}"


def claim_key(record: Record) -> str:
    """Where the first event of an idempotency key (per function) is named."""
    digest = hashlib.sha256(f"{record.function}\0{record.idempotency_key}".encode()).hexdigest()
    return f"k.{digest[:40]}"


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


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


class Records:
    """The records in the bucket ``kv``; a body is cut into entries of ``chunk`` bytes."""

    def __init__(self, kv: KeyValue, chunk: int, timeout_s: float) -> None:
        self.kv = kv
        self.chunk = chunk
        self.timeout_s = timeout_s

    async def entry(self, id: str) -> Entry | None:
        try:
            entry = await self.kv.get(record_key(id))
        except KeyNotFoundError:
            return None
        return json.loads(entry.value or b"{}"), entry.revision or 0

    async def change(
        self, id: str, edit: Callable[[Doc], bool], entry: Entry | None = None
    ) -> Doc | None:
        """The record as ``edit`` changed it, by compare-and-set (read again if it changed
        meanwhile); None when there is none or ``edit`` returned False (left it)."""
        for attempt in itertools.count():
            entry = entry or await self.entry(id)
            if entry is None or not edit(entry[0]):
                return None
            try:
                await self.kv.update(record_key(id), dumps(entry[0]), last=entry[1])
            except KeyWrongLastSequenceError:
                if attempt >= 2:
                    raise
                entry = None
                continue
            return entry[0]
        raise AssertionError("unreachable")

    async def create(self, record: Record) -> Doc:
        """A new record, queued and visible at once, its bodies stored first."""
        doc: Doc = {name: getattr(record, name) for name in FIELDS}
        doc.update(visible_at=record.enqueued_at, lease_until=None, gen=0, result_chunks=None)
        doc["payload_chunks"] = await self.put_body(record.id, "p", record.payload)
        if record.result is not None:
            doc["result_chunks"] = await self.put_body(record.id, "r", record.result)
        await self.kv.create(record_key(record.id), dumps(doc))
        return doc

    async def first(self, record: Record) -> Record | None:
        """The event the record's idempotency key made within the window, if any."""
        try:
            claim = json.loads((await self.kv.get(claim_key(record))).value or b"{}")
        except KeyNotFoundError:
            return None
        if claim["enqueued_at"] <= record.enqueued_at - IDEMPOTENCY_WINDOW_S:
            return None
        entry = await self.entry(claim["id"])
        return await self.record(entry[0]) if entry else None

    async def claim(self, record: Record) -> None:
        """The record as the first event of its idempotency key."""
        claim = {"id": record.id, "enqueued_at": record.enqueued_at}
        await self.kv.put(claim_key(record), dumps(claim))

    async def put_body(self, id: str, part: str, body: bytes) -> int:
        size, key = self.chunk, f"b.{token(id)}.{part}"
        chunks = [body[at : at + size] for at in range(0, len(body), size)]
        await asyncio.gather(*(self.kv.put(f"{key}.{n}", c) for n, c in enumerate(chunks)))
        return len(chunks)

    async def get_body(self, id: str, part: str, chunks: int | None) -> bytes | None:
        if chunks is None:
            return None
        key = f"b.{token(id)}.{part}"
        found = await asyncio.gather(*(self.kv.get(f"{key}.{n}") for n in range(chunks)))
        return b"".join(entry.value or b"" for entry in found)

    async def record(self, doc: Doc) -> Record:
        payload, result = await asyncio.gather(
            self.get_body(doc["id"], "p", doc["payload_chunks"]),
            self.get_body(doc["id"], "r", doc["result_chunks"]),
        )
        return Record(**{name: doc[name] for name in FIELDS}, payload=payload or b"", result=result)

    async def records(self, docs: list[Doc]) -> list[Record]:
        return list(await asyncio.gather(*(self.record(doc) for doc in docs)))

    async def scan(self) -> list[Entry]:
        """Every record (without bodies), through a KV watcher."""
        watcher = await self.kv.watch("r.>", ignore_deletes=True, inactive_threshold=10)
        found = []
        try:
            while (entry := await watcher.updates(timeout=self.timeout_s)) is not None:
                found.append((json.loads(entry.value or b"{}"), entry.revision or 0))
        finally:
            await watcher.stop()
        return found
