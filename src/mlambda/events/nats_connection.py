"""The NATS queue's connection: connecting (with a deadline, then reconnecting forever), the
stream and KV bucket it creates when missing, and the messages: publishing one per event
generation, the pull consumer per function, and flushed acks and naks."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable

from nats.aio.client import Client
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError
from nats.js.errors import NotFoundError as StreamNotFoundError
from nats.js.kv import KeyValue

from mlambda.events.nats_records import Doc, Records, Writer, dumps, token
from mlambda.security.ratelimit import redacted_url

log = logging.getLogger("mlambda.events")
# Short, so that an outage answers 503 within seconds rather than hanging the request.
TIMEOUT_S = 2
# A guard only: a release is a delivery too, one per 0.2 s at most, for an event's age (6 h).
MAX_DELIVER = 200_000


@dataclasses.dataclass
class Connection:
    nc: Client
    js: JetStreamContext
    records: Records
    prefix: str
    stream: str
    subs: dict[str, JetStreamContext.PullSubscription] = dataclasses.field(default_factory=dict)
    ack_waits: dict[str, float] = dataclasses.field(default_factory=dict)
    # The flush that the acks and naks sent in this event-loop turn wait for (not yet begun).
    flushing: asyncio.Future[None] | None = None

    async def publish(self, doc: Doc) -> None:
        """The message that stands for the record's generation."""
        subject = f"{self.prefix}.events.{token(doc['function'])}"
        body = dumps({"id": doc["id"], "gen": doc["gen"]})
        await self.records.writer.publish(subject, body, {"Nats-Expected-Stream": self.stream})

    async def settle(self, reply: Awaitable[None]) -> None:
        """An ack or nak, flushed: the server has it when this returns. The replies sent in
        the same turn share one flush (one PING after all of them, its PONG their receipt)."""
        await reply
        if self.flushing is None:
            self.flushing = asyncio.ensure_future(self._flush())
            # Its error is each waiter's; read here too, in case all of them were cancelled.
            self.flushing.add_done_callback(lambda done: done.cancelled() or done.exception())
        await asyncio.shield(self.flushing)  # one caller cancelled leaves the flush to others

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the others of this turn send theirs
        self.flushing = None  # a reply sent from now on is not covered: it starts the next
        await self.nc.flush(timeout=TIMEOUT_S)

    async def subscription(
        self, function: str, visibility_s: float
    ) -> JetStreamContext.PullSubscription:
        """The function's consumer, its ack wait the lease's visibility (set again when a
        lease asks for another)."""
        name = f"{self.prefix}-{token(function)}"
        if self.ack_waits.get(function) != visibility_s:
            config = api.ConsumerConfig(
                name=name,
                durable_name=name,
                filter_subject=f"{self.prefix}.events.{token(function)}",
                ack_wait=visibility_s,
                max_deliver=MAX_DELIVER,
                max_ack_pending=-1,  # retries waiting out their delay are pending acks too
            )
            await self.js.add_consumer(self.stream, config)  # creates or updates
            self.ack_waits[function] = visibility_s
        if function not in self.subs:
            self.subs[function] = await self.js.pull_subscribe_bind(
                durable=name, stream=self.stream
            )
        return self.subs[function]


async def connect(url: str, server: str, name: str, prefix: str) -> Connection:
    """Connected to ``server`` (``url`` without its query, which is shown redacted), the
    stream ``<prefix>-events`` and the bucket ``<prefix>-records`` there."""
    shown = redacted_url(url)
    stream = f"{prefix}-events"
    nc = Client()

    async def error_cb(error: Exception) -> None:
        log.debug("NATS at %s: %s", shown, error)

    async def disconnected_cb() -> None:
        if not nc.is_closed:
            log.warning("lost NATS at %s; reconnecting", shown)

    async def reconnected_cb() -> None:
        log.warning("reconnected to NATS at %s", shown)

    try:
        # It reconnects forever once connected, so the first connect needs a deadline.
        await asyncio.wait_for(
            nc.connect(
                server,
                name=name,
                connect_timeout=TIMEOUT_S,
                # Annotated int in nats-py, but used as seconds to sleep: a float is fine.
                reconnect_time_wait=0.25,  # type: ignore[arg-type]
                max_reconnect_attempts=-1,
                ping_interval=10,  # a server gone silent is noticed within ~30 s
                error_cb=error_cb,
                disconnected_cb=disconnected_cb,
                reconnected_cb=reconnected_cb,
            ),
            TIMEOUT_S,
        )
        js = nc.jetstream(timeout=TIMEOUT_S)
        try:
            await js.stream_info(stream)
        except StreamNotFoundError:
            await js.add_stream(
                name=stream,
                subjects=[f"{prefix}.events.*"],
                retention=api.RetentionPolicy.WORK_QUEUE,
                storage=api.StorageType.FILE,
            )
        kv = await _bucket(js, f"{prefix}-records")
    except BaseException:
        await nc.close()
        raise
    # What a KV entry's subject and headers leave of max_payload.
    records = Records(kv, Writer(nc, TIMEOUT_S), max(1024, nc.max_payload - 4096), TIMEOUT_S)
    return Connection(nc, js, records, prefix, stream)


async def _bucket(js: JetStreamContext, name: str) -> KeyValue:
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        return await js.create_key_value(bucket=name, history=1, storage=api.StorageType.FILE)
