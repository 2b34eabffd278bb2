"""A queue trigger on a RabbitMQ queue (``amqp://USER:PASS@HOST:5672/VHOST?queue=NAME``), with
aio-pika. The queue is used as it is when it exists (any type, any arguments), else declared
durable.

Messages are consumed with manual acknowledgement and a prefetch of the trigger's batch size
times its concurrency. A failed message is published again to the same queue after the retry
delay, with its receive count in the ``x-mlambda-receive-count`` header and its message id kept,
and only then (publisher confirm received) acknowledged: a crash in between delivers it twice,
never zero times. A message not acknowledged when the connection drops (``serve`` killed, the
broker restarted) is delivered again by RabbitMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import ChannelNotFoundEntity

from mlambda.events.shapes import QueueMessage
from mlambda.events.triggers.broker import BrokerError, PushedBroker

# aiormq logs a lost connection with its traceback; the trigger logs the outage once itself.
logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)
COUNT_HEADER = "x-mlambda-receive-count"
FIRST_HEADER = "x-mlambda-first-received-ms"


class RabbitQueueBroker(PushedBroker):
    broker = "rabbitmq"

    def __init__(self, url: str, name: str, visibility_s: float, prefetch: int) -> None:
        super().__init__(name, visibility_s)
        self.url = urllib.parse.urlsplit(url)._replace(query="").geturl()
        self.prefetch = max(1, min(65535, prefetch))
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._held: dict[str, AbstractIncomingMessage] = {}

    async def open(self) -> None:
        self._buffer = asyncio.Queue()
        self._held.clear()
        try:
            self._connection = await aio_pika.connect(self.url, timeout=10)
            channel = await self._connection.channel(publisher_confirms=True)
            try:
                queue = await channel.declare_queue(self.name, passive=True)
            except ChannelNotFoundEntity:
                channel = await self._connection.channel(publisher_confirms=True)
                queue = await channel.declare_queue(self.name, durable=True)
            await channel.set_qos(prefetch_count=self.prefetch)
            await queue.consume(self._arrived, no_ack=False)
            self._channel = channel
        except (aio_pika.exceptions.AMQPError, OSError, TimeoutError) as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    async def _arrived(self, message: AbstractIncomingMessage) -> None:
        headers = dict(message.headers or {})
        count = _int(headers.pop(COUNT_HEADER, 0)) + 1 + int(bool(message.redelivered))
        receipt = f"{message.delivery_tag}"
        self._held[receipt] = message
        sent = message.timestamp.timestamp() if message.timestamp else time.time()
        self._buffer.put_nowait(
            QueueMessage(
                id=message.message_id or str(uuid.uuid4()),
                body=message.body,
                receipt=receipt,
                sent_at=sent,
                first_received_at=_int(headers.pop(FIRST_HEADER, 0)) / 1000 or time.time(),
                receive_count=count,
                attributes={k: _text(v) for k, v in headers.items()},
            )
        )

    def _alive(self) -> aio_pika.abc.AbstractChannel:
        if self._channel is None or self._channel.is_closed or self._connection is None:
            raise BrokerError("the connection to RabbitMQ was closed")
        if self._connection.is_closed:
            raise BrokerError("the connection to RabbitMQ was closed")
        return self._channel

    async def ack(self, messages: Sequence[QueueMessage]) -> None:
        self._alive()
        try:
            for message in messages:
                held = self._held.pop(message.receipt, None)
                if held is not None:
                    await held.ack()
        except aio_pika.exceptions.AMQPError as exc:
            raise BrokerError(str(exc)) from exc

    async def _again(self, message: QueueMessage, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        held = self._held.pop(message.receipt, None)
        if held is None:
            return
        with contextlib.suppress(aio_pika.exceptions.AMQPError, BrokerError, OSError):
            channel = self._alive()
            headers: dict[str, Any] = {
                **message.attributes,
                COUNT_HEADER: message.receive_count,
                FIRST_HEADER: int(message.first_received_at * 1000),
            }
            copy = aio_pika.Message(
                message.body,
                headers=headers,
                message_id=message.id,
                content_type=held.content_type,
                timestamp=held.timestamp,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await channel.default_exchange.publish(copy, routing_key=self.name)
            await held.ack()  # the copy is confirmed: the original can go

    async def backlog(self) -> int | None:
        try:
            channel = self._alive()
            queue = await channel.declare_queue(self.name, passive=True)
        except (aio_pika.exceptions.AMQPError, BrokerError):
            return None
        return queue.declaration_result.message_count

    async def close(self) -> None:
        await self._drop_retries()
        connection, self._connection, self._channel = self._connection, None, None
        self._held.clear()
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
