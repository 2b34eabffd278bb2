"""A stream trigger on a NATS JetStream stream (``nats://HOST:4222?stream=NAME&subject=F``):
read in order by an ephemeral pull consumer that acks nothing, from the trigger's checkpoint
(a stream sequence), filtered to ``subject`` when given. A message's ``Partition-Key`` header
is its partition key, else its subject; its data is the record's data."""

from __future__ import annotations

import contextlib
import datetime
import urllib.parse

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from mlambda.events.shapes import StreamRecord
from mlambda.events.triggers.broker import BrokerError
from mlambda.events.triggers.nats_queue import TIMEOUT_S
from mlambda.events.triggers.stream_broker import SHARD, StreamReader

KEY_HEADER = "Partition-Key"
# An ephemeral consumer left behind (serve killed) is removed by the server after this long.
INACTIVE_S = 60.0


class NatsStreamReader(StreamReader):
    broker = "nats"

    def __init__(self, url: str, name: str, subject: str) -> None:
        super().__init__(name)
        self.url = urllib.parse.urlsplit(url)._replace(query="").geturl()
        self.subject = subject
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._after = ""  # where the consumer in use reads after

    async def open(self) -> None:
        self._sub, self._after = None, ""
        try:
            self._nc = await nats.connect(
                self.url, allow_reconnect=False, connect_timeout=TIMEOUT_S, max_reconnect_attempts=0
            )
            self._js = self._nc.jetstream(timeout=TIMEOUT_S)
            try:
                await self._js.stream_info(self.name)
            except NotFoundError:
                await self._js.add_stream(name=self.name, subjects=[self.subject or self.name])
        except (NatsError, OSError, TimeoutError) as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None or self._nc is None or not self._nc.is_connected:
            raise BrokerError("the connection to NATS was closed")
        return self._js

    async def start(self, starting_position: str, timestamp: float | None) -> str:
        if starting_position == "trim_horizon":
            return "0"
        try:
            info = await self.js.stream_info(self.name)
            if starting_position == "latest":
                return str(info.state.last_seq)
            when = datetime.datetime.fromtimestamp(timestamp or 0, datetime.UTC)
            probe = await self._consumer(
                api.ConsumerConfig(
                    deliver_policy=api.DeliverPolicy.BY_START_TIME,
                    opt_start_time=when,
                )
            )
            try:
                [first] = await probe.fetch(1, timeout=1)
                return str(first.metadata.sequence.stream - 1)
            except (NatsTimeout, TimeoutError):
                return str(info.state.last_seq)
            finally:
                with contextlib.suppress(NatsError, TimeoutError):
                    await probe.unsubscribe()
        except (NatsError, TimeoutError) as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    async def _consumer(self, config: api.ConsumerConfig) -> JetStreamContext.PullSubscription:
        config.ack_policy = api.AckPolicy.NONE
        config.inactive_threshold = INACTIVE_S
        if self.subject:
            config.filter_subject = self.subject
        subject = self.subject or ">"
        return await self.js.pull_subscribe(subject, durable=None, stream=self.name, config=config)

    async def read(self, after: str, most: int, wait_s: float) -> list[StreamRecord]:
        try:
            if self._sub is None or self._after != after:
                if self._sub is not None:
                    with contextlib.suppress(NatsError, TimeoutError):
                        await self._sub.unsubscribe()
                self._sub = await self._consumer(
                    api.ConsumerConfig(
                        deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                        opt_start_seq=int(after) + 1,
                    )
                )
            try:
                messages = await self._sub.fetch(most, timeout=max(0.05, wait_s))
            except (NatsTimeout, TimeoutError):
                self.js  # noqa: B018 - a connection lost meanwhile is a BrokerError
                self._after = after
                return []
        except NatsError as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc
        records = []
        for msg in messages:
            meta = msg.metadata
            key = (msg.headers or {}).get(KEY_HEADER) or msg.subject
            arrived = meta.timestamp.timestamp() if meta.timestamp else 0.0
            records.append(StreamRecord(key, str(meta.sequence.stream), msg.data, arrived, SHARD))
        self._after = records[-1].sequence if records else after
        return records

    async def close(self) -> None:
        nc, self._nc, self._js, self._sub = self._nc, None, None, None
        if nc is not None:
            with contextlib.suppress(NatsError, OSError):
                await nc.close()
