"""A queue trigger on an MQTT topic filter (``mqtt://USER:PASS@HOST:1883?topic=t/+``), with
paho-mqtt: QoS 1, a persistent session (client id ``mlambda-TRIGGER``, clean session off) and
manual acknowledgement, so a message is PUBACKed only once the handler succeeded for it or it
went to the dead letter; the broker delivers what was not acknowledged again when the trigger
reconnects (``serve`` killed, the broker restarted).

MQTT has no message ids nor receive counts: a message gets an id when it arrives, and a failed
one is kept here and handed over again after the retry delay, its count one higher (a
redelivery by the broker starts again at 1, or 2 when the broker marks it a duplicate). The
broker's in-flight limit (Mosquitto's ``max_inflight_messages``, 20 by default) bounds how many
messages are unacknowledged at once, and so the batches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as paho

from mlambda.events.shapes import QueueMessage
from mlambda.events.triggers.broker import BrokerError, PushedBroker

KEEPALIVE_S = 30


class MqttQueueBroker(PushedBroker):
    broker = "mqtt"

    def __init__(self, url: str, name: str, client_id: str, visibility_s: float) -> None:
        super().__init__(name, visibility_s)
        self.parts = urllib.parse.urlsplit(url)
        self.client_id = client_id
        self._client: paho.Client | None = None
        self._held: dict[str, int] = {}  # receipt -> the packet id to acknowledge
        self._lost: str = ""

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._buffer, self._lost = asyncio.Queue(), ""
        self._held.clear()
        client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            manual_ack=True,
        )
        if self.parts.username:
            client.username_pw_set(
                urllib.parse.unquote(self.parts.username),
                urllib.parse.unquote(self.parts.password or ""),
            )
        subscribed = loop.create_future()

        def on_connect(client: paho.Client, _: Any, flags: Any, reason: Any, __: Any) -> None:
            if reason.is_failure:
                loop.call_soon_threadsafe(_settle, subscribed, BrokerError(str(reason)))
                return
            client.subscribe(self.name, qos=1)

        def on_subscribe(_: Any, __: Any, mid: int, reasons: Any, ___: Any) -> None:
            failed = [r for r in reasons if r.is_failure]
            error = BrokerError(f"subscribe {self.name!r}: {failed[0]}") if failed else None
            loop.call_soon_threadsafe(_settle, subscribed, error)

        def on_message(_: Any, __: Any, message: paho.MQTTMessage) -> None:
            loop.call_soon_threadsafe(self._arrived, message)

        def on_disconnect(_: Any, __: Any, ___: Any, reason: Any, ____: Any) -> None:
            self._lost = f"disconnected from the MQTT broker ({reason})"
            loop.call_soon_threadsafe(_settle, subscribed, BrokerError(self._lost))

        client.on_connect, client.on_subscribe = on_connect, on_subscribe
        client.on_message, client.on_disconnect = on_message, on_disconnect
        try:
            await asyncio.to_thread(
                client.connect,
                self.parts.hostname or "127.0.0.1",
                self.parts.port or 1883,
                KEEPALIVE_S,
            )
        except OSError as exc:
            raise BrokerError(str(exc)) from exc
        client.loop_start()
        self._client = client
        await asyncio.wait_for(subscribed, 10)

    def _arrived(self, message: paho.MQTTMessage) -> None:
        receipt = str(uuid.uuid4())
        self._held[receipt] = message.mid
        now = time.time()
        self._buffer.put_nowait(
            QueueMessage(
                id=receipt,
                body=bytes(message.payload),
                receipt=receipt,
                sent_at=now,
                first_received_at=now,
                receive_count=2 if message.dup else 1,
                attributes={"mqtt-topic": message.topic},
            )
        )

    def _alive(self) -> paho.Client:
        if self._client is None or self._lost:
            raise BrokerError(self._lost or "not connected to the MQTT broker")
        return self._client

    async def ack(self, messages: Sequence[QueueMessage]) -> None:
        client = self._alive()
        for message in messages:
            mid = self._held.pop(message.receipt, None)
            if mid is not None:
                client.ack(mid, 1)

    async def _again(self, message: QueueMessage, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        if message.receipt in self._held:
            count = message.receive_count + 1
            self._buffer.put_nowait(dataclasses.replace(message, receive_count=count))

    async def backlog(self) -> int | None:
        return self._buffer.qsize()

    async def close(self) -> None:
        await self._drop_retries()
        client, self._client = self._client, None
        self._held.clear()
        if client is not None:
            await asyncio.to_thread(client.disconnect)
            await asyncio.to_thread(client.loop_stop)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
