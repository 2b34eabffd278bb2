"""What a queue trigger needs of a broker, whichever it is: receive a batch, acknowledge what is
done, deliver again what failed, and say how much is waiting. One module per broker does it
(rabbitmq.py, redis_queue.py, nats_queue.py, mqtt.py, platform_queue.py).

A message is acknowledged only when the trigger says so: one the platform received and did
not acknowledge (``serve`` killed, a connection lost) is delivered again by the broker, after
``visibility_s`` at the latest.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from mlambda.events.shapes import QueueMessage
from mlambda.events.triggers.state import RECONNECTING, RUNNING, TriggerState

log = logging.getLogger("mlambda.triggers")
RECONNECT_S = 0.5
RECONNECT_MAX_S = 15.0


class BrokerError(Exception):
    """The broker cannot be reached or refused a call: the trigger reconnects, with backoff."""


class QueueBroker(abc.ABC):
    broker = ""  # as eventSource names it: mlambda:<broker>

    def __init__(self, name: str, visibility_s: float) -> None:
        self.name = name  # the queue, stream or topic filter
        # A received message not acknowledged within this long is delivered again.
        self.visibility_s = visibility_s

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect (and declare what the trigger consumes from); BrokerError when it cannot."""

    @abc.abstractmethod
    async def receive(self, most: int, window_s: float, wait_s: float) -> list[QueueMessage]:
        """Up to ``most`` messages: waits up to ``wait_s`` for a first one, then up to
        ``window_s`` more for the batch to fill (0: only what is there already)."""

    @abc.abstractmethod
    async def ack(self, messages: Sequence[QueueMessage]) -> None:
        """Done with: the broker forgets them."""

    @abc.abstractmethod
    async def retry(self, messages: Sequence[QueueMessage], delay_s: float) -> None:
        """Deliver again after ``delay_s``, their receive count one higher."""

    async def backlog(self) -> int | None:
        """Messages waiting to be received, if the broker says (None: it does not)."""
        return None

    @abc.abstractmethod
    async def close(self) -> None: ...


class PushedBroker(QueueBroker):
    """A broker that pushes messages to the trigger (RabbitMQ, MQTT): its callback fills a
    buffer that ``receive`` takes batches from; a retry waits in a task of its own."""

    def __init__(self, name: str, visibility_s: float) -> None:
        super().__init__(name, visibility_s)
        self._buffer: asyncio.Queue[QueueMessage] = asyncio.Queue()
        self._later: set[asyncio.Task[None]] = set()

    @abc.abstractmethod
    def _alive(self) -> Any:
        """The connection (or channel) in use; BrokerError when it is gone."""

    async def receive(self, most: int, window_s: float, wait_s: float) -> list[QueueMessage]:
        self._alive()
        batch = await collect(self._buffer, most, window_s, wait_s)
        if not batch:
            self._alive()  # nothing came: perhaps because the connection went
        return batch

    async def retry(self, messages: Sequence[QueueMessage], delay_s: float) -> None:
        for message in messages:
            task = asyncio.ensure_future(self._again(message, delay_s))
            self._later.add(task)
            task.add_done_callback(self._later.discard)

    @abc.abstractmethod
    async def _again(self, message: QueueMessage, delay_s: float) -> None:
        """Deliver ``message`` again after ``delay_s``."""

    async def _drop_retries(self) -> None:
        """At close: a message waiting to be retried is still unacknowledged at the broker,
        which delivers it again."""
        for task in list(self._later):
            task.cancel()
        await asyncio.gather(*self._later, return_exceptions=True)


async def collect(
    buffer: asyncio.Queue[QueueMessage], most: int, window_s: float, wait_s: float
) -> list[QueueMessage]:
    """A batch from a buffer that a broker's callback fills (``receive``'s rules)."""
    try:
        first = (
            await asyncio.wait_for(buffer.get(), wait_s) if buffer.empty() else buffer.get_nowait()
        )
    except TimeoutError:
        return []
    batch = [first]
    deadline = time.monotonic() + window_s
    while len(batch) < most:
        if not buffer.empty():
            batch.append(buffer.get_nowait())
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            batch.append(await asyncio.wait_for(buffer.get(), left))
        except TimeoutError:
            break
    return batch


class Connection(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...


async def supervise(
    trigger: Any,
    broker: str,
    state: TriggerState,
    session: Callable[[], Awaitable[None]],
    connection: Connection,
) -> None:
    """Until cancelled: open the connection, run ``session`` (it returns or raises when the
    broker fails), close, and open again after a backoff (0.5 s doubling to 15 s). An outage
    is logged once when it starts and once when it ends; the state says it meanwhile."""
    delay, outage = RECONNECT_S, False
    while True:
        try:
            await connection.open()
            if outage:
                log.info("trigger %s of %s: connected again", trigger.id, trigger.function)
            outage, delay = False, RECONNECT_S
            state.state = RUNNING
            await session()
        except Exception as exc:  # a broker down, a refused call: reconnect
            state.state = RECONNECTING
            state.failed(f"broker: {exc}")
            if not outage:
                log.warning(
                    "trigger %s of %s: broker %s unavailable (%s); reconnecting with backoff",
                    trigger.id,
                    trigger.function,
                    broker,
                    exc,
                    exc_info=not isinstance(exc, BrokerError),
                )
            outage = True
        finally:
            with contextlib.suppress(Exception):
                await connection.close()
        await asyncio.sleep(delay)
        delay = min(RECONNECT_MAX_S, delay * 2)
