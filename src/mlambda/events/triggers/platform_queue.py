"""A queue trigger on the platform's own queue (``mlambda://NAME``, events/queues.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from mlambda.errors import NotFound
from mlambda.events.queues import MAX_MESSAGES, Message, PlatformQueues
from mlambda.events.shapes import QueueMessage
from mlambda.events.triggers.broker import QueueBroker


class PlatformQueueBroker(QueueBroker):
    broker = "mlambda"

    def __init__(self, name: str, visibility_s: float, queues: PlatformQueues) -> None:
        super().__init__(name, visibility_s)
        self.queues = queues
        self._received: dict[str, Message] = {}

    async def open(self) -> None:
        return None  # the platform's queue is there while the platform is

    async def receive(self, most: int, window_s: float, wait_s: float) -> list[QueueMessage]:
        deadline = time.monotonic() + wait_s
        batch = await self._take(most)
        while not batch and time.monotonic() < deadline:
            await self.queues.wait(self.name, deadline - time.monotonic())
            batch = await self._take(most)
        end = time.monotonic() + window_s
        while batch and len(batch) < most:
            more = await self._take(most - len(batch))
            if not more:
                if time.monotonic() >= end:
                    break
                await self.queues.wait(self.name, end - time.monotonic())
            batch += more
        return batch

    async def _take(self, most: int) -> list[QueueMessage]:
        taken: list[QueueMessage] = []
        while len(taken) < most:
            want = min(MAX_MESSAGES, most - len(taken))
            messages = await self.queues.receive(self.name, want, self.visibility_s)
            for message in messages:
                record = message.record
                self._received[message.receipt] = message
                taken.append(
                    QueueMessage(
                        id=record.id,
                        body=record.payload,
                        receipt=message.receipt,
                        sent_at=record.enqueued_at,
                        first_received_at=record.enqueued_at,
                        receive_count=record.attempts,
                    )
                )
            if len(messages) < want:
                break
        return taken

    async def ack(self, messages: Sequence[QueueMessage]) -> None:
        for message in messages:
            self._received.pop(message.receipt, None)
            with contextlib.suppress(NotFound):  # received again meanwhile: a duplicate
                await self.queues.delete(self.name, message.receipt)

    async def retry(self, messages: Sequence[QueueMessage], delay_s: float) -> None:
        for message in messages:
            received = self._received.pop(message.receipt, None)
            if received is not None:
                await self.queues.retry(received, delay_s)

    async def backlog(self) -> int | None:
        return max(0, await self.queues.depth(self.name) - len(self._received))

    async def close(self) -> None:
        self._received.clear()
