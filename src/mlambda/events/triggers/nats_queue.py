"""A queue trigger on a NATS JetStream stream (``nats://HOST:4222?stream=S&subject=F``), read
by a durable pull consumer of its own (``mlambda-TRIGGER``), made when missing, from the
stream's first message, filtered to ``subject`` when given. A stream that does not exist is
made, capturing ``subject`` (or the stream's name).

Receive counts are JetStream's delivery counts. A message is acked when done (the acks
flushed before the trigger goes on), nak'ed with the retry delay when it failed; one not
acked within the visibility timeout (``serve`` killed) is delivered again by the server.
"""

from __future__ import annotations

import contextlib
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from mlambda.events.shapes import QueueMessage
from mlambda.events.triggers.broker import BrokerError, QueueBroker

TIMEOUT_S = 5


class NatsQueueBroker(QueueBroker):
    broker = "nats"

    def __init__(
        self, url: str, name: str, subject: str, durable: str, visibility_s: float, pending: int
    ) -> None:
        super().__init__(name, visibility_s)
        self.url = urllib.parse.urlsplit(url)._replace(query="").geturl()
        self.subject = subject
        self.durable = durable
        self.pending = pending
        self._nc: Client | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._held: dict[str, Msg] = {}

    async def open(self) -> None:
        self._held.clear()
        try:
            self._nc = await nats.connect(
                self.url, allow_reconnect=False, connect_timeout=TIMEOUT_S, max_reconnect_attempts=0
            )
            js = self._nc.jetstream(timeout=TIMEOUT_S)
            try:
                await js.stream_info(self.name)
            except NotFoundError:
                await js.add_stream(name=self.name, subjects=[self.subject or self.name])
            config = api.ConsumerConfig(
                durable_name=self.durable,
                deliver_policy=api.DeliverPolicy.ALL,
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=self.visibility_s,
                max_ack_pending=self.pending,
                filter_subject=self.subject or None,
            )
            await js.add_consumer(self.name, config)
            self._sub = await js.pull_subscribe_bind(self.durable, self.name)
        except (NatsError, OSError, TimeoutError) as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    @property
    def sub(self) -> JetStreamContext.PullSubscription:
        if self._sub is None or self._nc is None or not self._nc.is_connected:
            raise BrokerError("the connection to NATS was closed")
        return self._sub

    async def receive(self, most: int, window_s: float, wait_s: float) -> list[QueueMessage]:
        batch = await self._fetch(most, wait_s)
        deadline = time.monotonic() + window_s
        while batch and len(batch) < most and time.monotonic() < deadline:
            more = await self._fetch(most - len(batch), deadline - time.monotonic())
            if not more:
                break
            batch += more
        return batch

    async def _fetch(self, most: int, wait_s: float) -> list[QueueMessage]:
        try:
            messages = await self.sub.fetch(most, timeout=max(0.05, wait_s))
        except (NatsTimeout, TimeoutError):
            self.sub  # noqa: B018 - a connection lost meanwhile is a BrokerError
            return []
        except NatsError as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc
        return [self._message(m) for m in messages]

    def _message(self, msg: Msg) -> QueueMessage:
        meta = msg.metadata
        headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-")}
        receipt = f"{meta.sequence.stream}.{meta.num_delivered}"
        self._held[receipt] = msg
        sent = meta.timestamp.timestamp() if meta.timestamp else time.time()
        identifier = (msg.headers or {}).get("Nats-Msg-Id") or str(meta.sequence.stream)
        return QueueMessage(
            id=identifier,
            body=msg.data,
            receipt=receipt,
            sent_at=sent,
            first_received_at=sent,
            receive_count=meta.num_delivered,
            attributes=headers,
        )

    async def _settle(self, messages: Sequence[QueueMessage], how: Any) -> None:
        try:
            for message in messages:
                held = self._held.pop(message.receipt, None)
                if held is not None:
                    await how(held)
            if self._nc is not None:
                await self._nc.flush(timeout=TIMEOUT_S)
        except (NatsError, OSError, TimeoutError) as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    async def ack(self, messages: Sequence[QueueMessage]) -> None:
        await self._settle(messages, lambda msg: msg.ack())

    async def retry(self, messages: Sequence[QueueMessage], delay_s: float) -> None:
        await self._settle(messages, lambda msg: msg.nak(delay=delay_s))

    async def backlog(self) -> int | None:
        try:
            info = await self.sub.consumer_info()
        except (NatsError, BrokerError, TimeoutError):
            return None
        return int(info.num_pending or 0)

    async def close(self) -> None:
        nc, self._nc, self._sub = self._nc, None, None
        self._held.clear()
        if nc is not None:
            with contextlib.suppress(NatsError, OSError):
                await nc.close()
