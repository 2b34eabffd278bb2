"""The async queue on NATS JetStream (``queue_url`` ``nats://`` or ``tls://``).

Everything is named from the URL's ``?prefix=NAME`` (default ``mlambda``):

* stream ``<prefix>-events``, work-queue retention: one message per unfinished event, on
  ``<prefix>.events.<function>``, carrying the invocation id and a generation.
* a durable pull consumer per function, ``<prefix>-<function>``. A lease is a fetched message:
  hidden until it is acked (the event finished: it leaves the work queue), nak'ed with a delay
  (a retry, or a release under backpressure: delivered again after it), or the ack wait (the
  lease's visibility timeout) passes, when it is delivered again to be leased again.
* KV bucket ``<prefix>-records``: each event's record under ``r.<id>`` (state, attempts, times,
  error, destination), changed by compare-and-set. Attempts are counted here, not by
  JetStream, as a release is no attempt. A small payload and result are kept inside the
  record, larger ones under ``b.<id>.<p|r>.<n>`` in chunks below the server's max_payload; an
  idempotency key's first event under ``k.<hash>``.

The KV is the truth; a message only says "look at this record". A fetched message whose record
finished, or that a newer generation replaced, is acked and dropped; one that came early goes
back with the delay left. ``recover`` gives every unfinished record a new generation and a new
message, so what a crash left leased runs again at once.

A call returns once JetStream acknowledged its writes (publish acks; acks and naks flushed,
one flush for those sent in the same turn). What a lease, ``next_visible`` and ``depth`` need
is indexed in memory (built from the KV on first use and by ``recover``), and the unfinished
records are kept there as last written, so a lease or an outcome is one KV write, no read
first; both assume one gateway per prefix (a write over a stale copy fails its CAS and reads
again). A fetch takes more messages than the lease needs and keeps the rest for the next ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import nats.errors
from nats.aio.msg import Msg

from mlambda.errors import InvalidSpec, ServiceUnavailable
from mlambda.events.nats_connection import TIMEOUT_S, Connection, connect
from mlambda.events.nats_index import EventIndex
from mlambda.events.nats_records import SAFE, Doc, Entry, Records, finished, loads, queued
from mlambda.events.queue import FINAL, QUEUED, RUNNING, SUCCEEDED, Queue, Record
from mlambda.security.ratelimit import redacted_url

# How long a fetch waits for messages the index says are due (JetStream's timers end a few ms
# after the times recorded); a function that had fewer is not fetched again for QUIET_S.
FETCH_WAIT_S = 0.2
QUIET_S = 1.0
FETCH_ROUNDS = 4
BATCH = 64
# A fetch for a lease this long takes up to BATCH messages and keeps those not leased now for
# the next leases of the function (a fetch round trip saved on each); shorter ones (a platform
# queue's receive) would come back before they were used.
AHEAD_MIN_S = 10.0


class NatsQueue(Queue):
    def __init__(self, url: str, consumer: str = "mlambda") -> None:
        parts = urlsplit(url)
        self._prefix = parse_qs(parts.query).get("prefix", ["mlambda"])[0]
        if not self._prefix or set(self._prefix) - SAFE:
            raise InvalidSpec(f"the queue's prefix must be letters, digits, - or _; got {url!r}")
        self._url = url
        self._server = parts._replace(query="").geturl()
        self._name = f"mlambda-{consumer}"
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()
        self._keys = asyncio.Lock()
        self._index = EventIndex([])
        self._indexed = False
        self._held: dict[str, Msg] = {}  # leased: id -> the message to settle
        # Fetched ahead, not yet leased: per function (usable until, by the monotonic clock;
        # the ack wait they were fetched under; the message), oldest first.
        self._ahead: dict[str, list[tuple[float, float, Msg]]] = {}

    # -- the connection -------------------------------------------------------------------------

    @property
    def _c(self) -> Connection:
        assert self._conn is not None, "used outside _call"
        return self._conn

    @property
    def _records(self) -> Records:
        return self._c.records

    @contextlib.asynccontextmanager
    async def _call(self, doing: str, index: bool = True) -> AsyncIterator[None]:
        """Connected (and indexed); any NATS failure inside is ServiceUnavailable."""
        try:
            async with self._lock:
                if self._conn is None:
                    self._conn = await connect(self._url, self._server, self._name, self._prefix)
                if index and not self._indexed:
                    docs = [d for d, _ in await self._records.scan()]
                    self._index, self._indexed = EventIndex(docs), True
            if not self._c.nc.is_connected:
                raise nats.errors.ConnectionReconnectingError  # fail fast while it reconnects
            yield
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise ServiceUnavailable(
                f"async queue unavailable: {doing} on NATS at {redacted_url(self._url)} failed "
                f"({type(error).__name__}: {str(error) or 'no answer'}); check that nats-server "
                "runs with JetStream (-js) and the URL is right"
            ) from error

    async def close(self) -> None:
        # The consumers' subscriptions and ack waits go with the connection.
        conn, self._conn, self._indexed = self._conn, None, False
        self._held, self._ahead = {}, {}
        if conn is not None:
            await conn.nc.close()

    async def _change(
        self, id: str, edit: Callable[[Doc], bool], entry: Entry | None = None
    ) -> Doc | None:
        """``Records.change``, the index told of the change."""
        doc = await self._records.change(id, edit, entry)
        if doc is not None:
            self._index.track(doc)
        return doc

    # -- accepting ------------------------------------------------------------------------------

    async def put(self, record: Record) -> Record:
        async with self._call("storing an event"):
            if not record.idempotency_key:
                return await self._put(record)
            async with self._keys:  # the lookup and the claim of a key belong together
                first = await self._records.first(record)
                if first is not None:
                    return first
                await self._put(record)
                await self._records.claim(record)
                return record

    async def _put(self, record: Record) -> Record:
        doc = await self._records.create(record)
        await self._c.publish(doc)
        self._index.track(doc)
        self._index.quiet.pop(record.function, None)  # a new message: worth a fetch
        return record

    # -- leasing --------------------------------------------------------------------------------

    async def lease_many(
        self, now: float, visibility_s: float, room: Callable[[str], int], limit: int
    ) -> list[Record]:
        """The index says how many of each function; JetStream which ones."""
        async with self._call("leasing events"):
            plan = self._index.plan(now, room, limit)
            taken = await asyncio.gather(
                *(self._take(f, n, now, visibility_s) for f, n in plan.items())
            )
            return sorted(itertools.chain(*taken), key=lambda r: r.enqueued_at)

    async def _take(
        self, function: str, most: int, now: float, visibility_s: float
    ) -> list[Record]:
        sub = await self._c.subscription(function, visibility_s)
        leased: list[Record] = []
        # A few rounds only: a message put back as early (``now`` is fixed) may come straight
        # back; the next lease looks again.
        for _ in range(FETCH_ROUNDS):
            want = most - len(leased)
            msgs = await self._fetched(function, want, visibility_s)
            quiet = False
            if len(msgs) < want:
                need = want - len(msgs)
                more = BATCH - need if visibility_s >= AHEAD_MIN_S else 0
                try:
                    got = await sub.fetch(need + max(0, more), timeout=FETCH_WAIT_S)
                except TimeoutError:
                    if not self._c.nc.is_connected:  # not "no messages": the server is gone
                        raise
                    self._index.quiet[function] = now + QUIET_S  # fewer than due: do not spin
                    got, quiet = [], True
                until = time.monotonic() + visibility_s / 2  # well before the server resends
                kept = [(until, visibility_s, m) for m in got[need:]]
                self._ahead.setdefault(function, []).extend(kept)
                msgs += got[:need]
            started = await asyncio.gather(*(self._start(m, now, visibility_s) for m in msgs))
            leased += [record for record in started if record is not None]
            if len(leased) == most or quiet:
                break
        return leased

    async def _fetched(self, function: str, most: int, visibility_s: float) -> list[Msg]:
        """Up to ``most`` of the messages fetched ahead; those past their time, or fetched for
        another visibility timeout (an ack wait no longer the consumer's), are put back."""
        fresh: list[tuple[float, float, Msg]] = []
        stale: list[Msg] = []
        clock = time.monotonic()
        for until, wait, msg in self._ahead.pop(function, []):
            if until > clock and wait == visibility_s:
                fresh.append((until, wait, msg))
            else:
                stale.append(msg)
        if fresh[most:]:
            self._ahead[function] = fresh[most:]
        await asyncio.gather(*(self._c.settle(msg.nak()) for msg in stale))
        return [msg for _, _, msg in fresh[:most]]

    async def _start(self, msg: Msg, now: float, visibility_s: float) -> Record | None:
        """The message's event, now leased; None when the message is stale or early."""
        ref = loads(msg.data)
        entry = await self._records.entry(ref["id"])
        doc = entry[0] if entry else None
        if doc is None or doc["gen"] != ref["gen"] or doc["state"] in FINAL:
            await self._c.settle(msg.ack())  # the event finished, or a newer message stands for it
            return None
        if doc["state"] == QUEUED and doc["visible_at"] > now:
            await self._c.settle(msg.nak(delay=doc["visible_at"] - now))
            return None
        if doc["state"] == RUNNING and doc["lease_until"] > now:
            self._held[doc["id"]] = msg  # an ack wait shorter than this lease: still its holder's
            return None

        def start(doc: Doc) -> bool:
            visible = doc["visible_at"] if doc["state"] == QUEUED else doc["lease_until"]
            if doc["gen"] != ref["gen"] or doc["state"] not in (QUEUED, RUNNING) or visible > now:
                return False
            doc.update(state=RUNNING, attempts=doc["attempts"] + 1, updated_at=now)
            doc["lease_until"] = now + visibility_s
            return True

        started = await self._change(doc["id"], start, entry)
        if started is None:  # changed meanwhile: look again at the next fetch
            await self._c.settle(msg.nak())
            return None
        self._held[doc["id"]] = msg
        return await self._records.record(started)

    async def next_visible(self, now: float, exclude: set[str]) -> float | None:
        async with self._call("reading the queue"):
            return self._index.next_visible(exclude)

    # -- outcomes -------------------------------------------------------------------------------

    async def ack(
        self, id: str, now: float, result: bytes, version: str, destination: str = ""
    ) -> None:
        async with self._call("storing an outcome"):
            entry = await self._records.entry(id)
            if entry is None or entry[0]["state"] != RUNNING:
                return  # a late outcome: its result must not replace the stored one
            values = await self._records.put_body(id, "result", result)
            values.update(version=version, error=None)
            edit = finished(now, SUCCEEDED, destination, values)
            await self._outcome(id, edit, lambda msg: msg.ack(), entry)

    async def end(
        self, id: str, now: float, state: str, error: dict[str, Any], destination: str = ""
    ) -> None:
        assert state in FINAL
        async with self._call("storing an outcome"):
            edit = finished(now, state, destination, {"error": error})
            await self._outcome(id, edit, lambda msg: msg.ack())

    async def retry(self, id: str, now: float, delay_s: float, error: dict[str, Any]) -> None:
        async with self._call("storing a retry"):
            edit = queued(now, delay_s, {"error": error}, 0)
            await self._outcome(id, edit, lambda msg: msg.nak(delay=delay_s))

    async def release(self, id: str, now: float, delay_s: float) -> None:
        async with self._call("releasing an event"):
            edit = queued(now, delay_s, {}, -1)  # no capacity: the attempt does not count
            await self._outcome(id, edit, lambda msg: msg.nak(delay=delay_s))

    async def _outcome(
        self,
        id: str,
        edit: Callable[[Doc], None],
        reply: Callable[[Msg], Awaitable[None]],
        entry: Entry | None = None,
    ) -> None:
        """``edit`` applied to a running record (a late outcome changes nothing), then
        ``reply`` sent to its message: an ack (it leaves the work queue) or a nak."""

        def change(doc: Doc) -> bool:
            if doc["state"] != RUNNING:
                return False
            edit(doc)
            return True

        if await self._change(id, change, entry) is not None and id in self._held:
            await self._c.settle(reply(self._held.pop(id)))

    async def delivered(self, id: str, ok: bool, error: str = "") -> None:
        def deliver(doc: Doc) -> bool:
            doc.update(delivery="delivered" if ok else "failed", delivery_error=error)
            return True

        async with self._call("storing a delivery"):
            await self._change(id, deliver)

    async def recover(self, now: float) -> int:
        """A new generation and message for every unfinished record (the old messages, left
        unacked by a process that is gone, are dropped when they come back)."""
        async with self._call("recovering events", index=False):
            async with self._lock:  # accepts meanwhile are tracked in the same index
                entries = await self._records.scan()
                if not self._indexed:
                    self._index, self._indexed = EventIndex([doc for doc, _ in entries]), True
            running = sum(doc["state"] == RUNNING for doc, _ in entries)
            for at in range(0, len(entries), BATCH):
                await asyncio.gather(*(self._renew(e, now) for e in entries[at : at + BATCH]))
            held, self._held, ahead, self._ahead = self._held, {}, self._ahead, {}
            for msg in [*held.values(), *(m for a in ahead.values() for _, _, m in a)]:
                await msg.ack()
            await self._c.nc.flush(timeout=TIMEOUT_S)
            return running

    async def _renew(self, entry: Entry, now: float) -> None:
        def renew(doc: Doc) -> bool:
            if doc["state"] not in (QUEUED, RUNNING):
                return False
            if doc["state"] == RUNNING:
                doc.update(state=QUEUED, visible_at=now, lease_until=None, updated_at=now)
            doc["gen"] += 1
            return True

        doc = await self._change(entry[0]["id"], renew, entry)
        if doc is not None:
            await self._c.publish(doc)

    # -- reading --------------------------------------------------------------------------------

    async def pending_deliveries(self) -> list[Record]:
        async with self._call("reading pending deliveries"):
            entries = await asyncio.gather(*(self._records.entry(id) for id in self._index.pending))
            return await self._records.records([entry[0] for entry in entries if entry])

    async def get(self, id: str) -> Record | None:
        async with self._call("reading an event"):
            entry = await self._records.entry(id)
            return await self._records.record(entry[0]) if entry else None

    async def list(self, function: str | None, state: str | None, limit: int) -> list[Record]:
        """Reads every record: the index keeps only unfinished ones."""
        async with self._call("listing events"):
            docs = [
                doc
                for doc, _ in await self._records.scan()
                if function in (None, doc["function"]) and state in (None, doc["state"])
            ]
            docs.sort(key=lambda doc: doc["enqueued_at"], reverse=True)
            return await self._records.records(docs[:limit])

    async def depth(self) -> dict[str, tuple[int, float]]:
        async with self._call("reading the queue"):
            return self._index.depth()
