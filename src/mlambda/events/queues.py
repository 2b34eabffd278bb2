"""The platform's own queues (``mlambda://NAME``): named queues of messages that a destination
(or anyone with a key) sends to and a consumer receives from, as SQS does: a received message is
hidden for its visibility timeout, deleted with the receipt handle of that receive, and seen
again if it is not deleted in time (at least once).

They are kept by the same queue contract as asynchronous invocations, in a namespace of their
own (another file, key prefix or stream set of the same backend): a message is a Record whose
``function`` is the queue's name, a receive a lease, a delete an ack. Created on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from mlambda.errors import InvalidRequest, NotFound
from mlambda.events.queue import RUNNING, Queue, Record, decoded

# SQS's rule for queue names.
QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
SCHEME = "mlambda://"
MAX_MESSAGES = 10
MAX_VISIBILITY_S = 43200
# A message is never run, so it is never retried or expired by the dispatcher's rules.
_FOREVER_S = 10 * 365 * 86400.0


def check_name(name: str) -> str:
    if not QUEUE_NAME.fullmatch(name):
        raise InvalidRequest(
            f"a queue name is 1 to 80 letters, digits, '-' or '_' (as SQS's), got {name!r}"
        )
    return name


@dataclasses.dataclass(frozen=True)
class Message:
    record: Record

    @property
    def receipt(self) -> str:
        """Names this receive: a later receive of the same message makes it stale."""
        return f"{self.record.id}.{self.record.attempts}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "messageId": self.record.id,
            "receiptHandle": self.receipt,
            "body": decoded(self.record.payload),
            "receiveCount": self.record.attempts,
            "sentAt": self.record.enqueued_at,
        }


class PlatformQueues:
    def __init__(self, queue: Queue, clock: Callable[[], float] = time.time) -> None:
        self.queue = queue
        self.clock = clock
        # Set when a message is sent to the queue: a trigger in this process waits on it.
        self._arrivals: dict[str, asyncio.Event] = {}

    async def send(self, name: str, body: bytes) -> str:
        """Store a message (durably, before returning); its id."""
        now = self.clock()
        record = Record(
            id=str(uuid.uuid4()),
            function=check_name(name),
            payload=body,
            max_attempts=1_000_000,
            max_age_s=_FOREVER_S,
            enqueued_at=now,
            updated_at=now,
        )
        sent = (await self.queue.put(record)).id
        if name in self._arrivals:
            self._arrivals[name].set()
        return sent

    async def wait(self, name: str, timeout_s: float) -> None:
        """Until a message is sent to ``name`` through this process, or ``timeout_s``."""
        arrival = self._arrivals.setdefault(name, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrival.wait(), timeout_s)
        arrival.clear()

    async def receive(self, name: str, most: int, visibility_s: float) -> list[Message]:
        check_name(name)
        if not 1 <= most <= MAX_MESSAGES:
            raise InvalidRequest(f"max_messages must be 1 to {MAX_MESSAGES}, got {most}")
        if not 0 <= visibility_s <= MAX_VISIBILITY_S:
            raise InvalidRequest(
                f"visibility_timeout_s must be 0 to {MAX_VISIBILITY_S}, got {visibility_s:g}"
            )
        leased = await self.queue.lease_many(
            self.clock(), visibility_s, lambda queue: most if queue == name else 0, most
        )
        return [Message(record) for record in leased]

    async def retry(self, message: Message, delay_s: float) -> None:
        """Visible again after ``delay_s`` (its next receive counted), as if its visibility
        timeout had been changed to that."""
        await self.queue.retry(message.record.id, self.clock(), delay_s, {})

    async def depth(self, name: str) -> int:
        return (await self.queue.depth()).get(name, (0, 0.0))[0]

    async def delete(self, name: str, receipt: str) -> None:
        """Delete a received message; NotFound when the receipt is not the latest receive's."""
        id, _, attempt = receipt.rpartition(".")
        record = await self.queue.get(id) if id else None
        if (
            record is None
            or record.function != check_name(name)
            or record.state != RUNNING
            or str(record.attempts) != attempt
        ):
            raise NotFound(
                f"receipt handle {receipt!r} of queue {name!r} is not that of a message "
                "received and not yet deleted (its visibility timeout may have run out)"
            )
        await self.queue.ack(record.id, self.clock(), b"", "")

    async def purge(self, name: str) -> int:
        """Delete every message of the queue, those received and not yet deleted included
        (their receipts are stale from then on); how many."""
        count = 0
        while messages := await self.receive(name, MAX_MESSAGES, 60):
            for message in messages:
                await self.delete(name, message.receipt)
            count += len(messages)
        while received := await self.queue.list(check_name(name), RUNNING, 1000):
            for record in received:
                await self.queue.ack(record.id, self.clock(), b"", "")
            count += len(received)
        return count

    async def depths(self) -> dict[str, dict[str, float]]:
        """Per queue with messages not yet deleted: how many, and the oldest's send time."""
        return {
            name: {"messages": count, "oldestSentAt": oldest}
            for name, (count, oldest) in sorted((await self.queue.depth()).items())
        }

    async def close(self) -> None:
        await self.queue.close()
