"""A queue trigger at work: receive batches from the broker, invoke the function with each in
SQS's event shape, then acknowledge, retry or dead-letter each message by what the handler said
(outcomes.queue_outcome).

Batches run through the same pool as every other call (``invoke``), one invocation per batch:
the broker is the durable queue, and a message is acknowledged there only once the handler
succeeded for it or it is in the dead letter. Concurrent batches follow the backlog, from one
up to ``max_concurrency``; an idle trigger waits in a blocking receive. A broker that goes away
is reconnected to with backoff, logged once per outage (broker.supervise).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from mlambda.errors import MlambdaError, Throttled
from mlambda.events.shapes import QueueMessage, WholeBatch, failed_items, sqs_event
from mlambda.events.triggers.broker import QueueBroker, supervise
from mlambda.events.triggers.outcomes import queue_outcome, wanted_batches
from mlambda.events.triggers.state import TriggerState
from mlambda.events.triggers.store import Trigger
from mlambda.pool.invocation import Invocation

log = logging.getLogger("mlambda.triggers")
# An idle worker's blocking receive returns this often (to notice a stop or a scale-down).
IDLE_WAIT_S = 1.0
# A failed message is delivered again after this, doubled per receive up to the max.
RETRY_DELAY_S = 0.5
RETRY_DELAY_MAX_S = 30.0
Invoke = Callable[[str, bytes], Awaitable[Invocation]]
Send = Callable[[str, bytes], Awaitable[Any]]


def retry_delay(receive_count: int) -> float:
    return min(RETRY_DELAY_MAX_S, RETRY_DELAY_S * 2 ** max(0, receive_count - 1))


def batch_failures(invocation: Invocation, ids: Sequence[str], partial: bool) -> list[str] | None:
    """The ids the handler failed; None when it failed the whole batch (an error, or with
    ``report_batch_item_failures`` an answer Lambda's rules refuse)."""
    if invocation.error is not None:
        return None
    if not partial:
        return []
    try:
        answer = json.loads(invocation.body) if invocation.body.strip() else None
        return failed_items(answer, ids)
    except (ValueError, WholeBatch):
        return None


class QueueTrigger:
    def __init__(
        self,
        trigger: Trigger,
        broker: QueueBroker,
        invoke: Invoke,
        send: Send,
        state: TriggerState,
        *,
        max_concurrency: int,
        region: str,
    ) -> None:
        self.trigger = trigger
        self.spec = trigger.spec
        self.broker = broker
        self._invoke = invoke
        self._send = send
        self.state = state
        self.max_concurrency = max_concurrency
        self.region = region
        self._workers: set[asyncio.Task[None]] = set()
        self._failure: asyncio.Future[BaseException] | None = None

    async def run(self) -> None:
        """Until cancelled: connect, work, and reconnect after a broker failure."""
        await supervise(self.trigger, self.broker.broker, self.state, self._session, self.broker)

    async def _session(self) -> None:
        """Work until a worker fails (raised here)."""
        self._failure = asyncio.get_running_loop().create_future()
        self._spawn()
        scaler = asyncio.ensure_future(self._scale())
        try:
            raise await self._failure
        finally:
            scaler.cancel()
            await self._stop_workers()
            with contextlib.suppress(asyncio.CancelledError):
                await scaler

    def _spawn(self) -> None:
        task = asyncio.ensure_future(self._work())
        self._workers.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._workers.discard(task)
        if task.cancelled() or self._failure is None or self._failure.done():
            return
        error = task.exception()
        if error is not None:
            self._failure.set_result(error)

    async def _stop_workers(self) -> None:
        workers = list(self._workers)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self.state.concurrency = 0

    async def _scale(self) -> None:
        """Concurrent batches by the broker's backlog, each second."""
        while True:
            backlog = await self.broker.backlog()
            self.state.lagging(backlog)
            if backlog is not None:
                wanted = wanted_batches(backlog, self.spec.size, self.max_concurrency)
                while len(self._workers) < wanted:
                    self._spawn()
            await asyncio.sleep(1.0)

    async def _work(self) -> None:
        while True:
            batch = await self.broker.receive(
                self.spec.size, self.spec.max_batching_window_s, IDLE_WAIT_S
            )
            if not batch:
                if len(self._workers) > 1:
                    return  # the backlog is gone: one poller stays
                continue
            if len(batch) == self.spec.size and len(self._workers) < self.max_concurrency:
                self._spawn()  # a full batch: more are probably waiting
            self.state.concurrency += 1
            try:
                await self._run_batch(batch)
            finally:
                self.state.concurrency -= 1

    async def _run_batch(self, batch: list[QueueMessage]) -> None:
        ids = [message.id for message in batch]
        event = sqs_event(batch, self.broker.broker, self.broker.name, self.region)
        try:
            invocation = await self._invoke(self.trigger.function, msgspec.json.encode(event))
        except Throttled:
            # No capacity now: deliver again shortly, as a failure that the receive count
            # remembers (Lambda's mappings do the same under throttling).
            await self.broker.retry(batch, RETRY_DELAY_S)
            self.state.batch({"retried": len(batch)})
            return
        except MlambdaError as exc:  # the function is broken or gone: the batch failed
            failed: list[str] | None = None
            self.state.failed(f"{type(exc).__name__}: {exc}")
        else:
            failed = batch_failures(invocation, ids, self.spec.report_batch_item_failures)
            if invocation.error is not None:
                self.state.failed(f"{invocation.error.error_type}: {invocation.error.message}")
        outcome = queue_outcome(
            ids, [m.receive_count for m in batch], failed, self.spec.receive_limit
        )
        by_id = {message.id: message for message in batch}
        dead = [by_id[i] for i in outcome.dead_letter]
        if dead:
            queue = self.spec.dead_letter.removeprefix("mlambda://")
            for message in dead:
                await self._send(queue, message.body)
        done = [by_id[i] for i in outcome.ack] + dead
        if done:
            await self.broker.ack(done)
        retry = [by_id[i] for i in outcome.retry]
        if retry:
            await self.broker.retry(retry, retry_delay(max(m.receive_count for m in retry)))
        self.state.batch(
            {
                "succeeded": len(outcome.ack),
                "retried": len(retry),
                "dead_lettered": len(dead),
            }
        )
