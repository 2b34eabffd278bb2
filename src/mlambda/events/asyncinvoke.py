"""Asynchronous invocation: accept an event durably, then run it at least once.

``accept`` stores the event before the caller gets its 202. One dispatcher task leases events
and runs each as an ordinary invocation through the same pool as a sync call; a failed attempt
is retried after a backoff, per the function's ``[function.async]``, until it succeeds, runs
out of attempts or grows too old. With nothing to do it sleeps until woken (an accept, a freed
slot) or until the next delayed event is due: an empty queue costs no CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from mlambda.errors import FunctionNotFound, MlambdaError, Throttled
from mlambda.events.config import AsyncSpec
from mlambda.events.destinations import deliver
from mlambda.events.queue import EXPIRED, FAILED, Queue, Record, after_failure
from mlambda.observe.tracing import REQUEST_SPAN, Tracing, child_of
from mlambda.pool.invocation import Invocation
from mlambda.registry.model import FunctionRecord
from mlambda.runtime.trace_header import TraceContext, parse_traceparent, traceparent
from mlambda.spec import FunctionSpec

log = logging.getLogger("mlambda.events")
# A throttled attempt (no capacity within the queue bound) waits this long and is not counted.
BACKPRESSURE_S = 0.2
# Events leased in one round trip to the queue.
LEASE_BATCH = 64
# A write the queue refused (a broker down) is tried again after this, doubling up to the max.
STORE_RETRY_S = 0.5
STORE_RETRY_MAX_S = 15.0
Invoke = Callable[..., Awaitable[Invocation]]
Send = Callable[[str, bytes], Awaitable[Any]]


def async_slots(spec: FunctionSpec) -> int:
    """Attempts of one function in flight at once: four per slot its instances have, so an
    instance that finishes one finds the next already waiting in the pool. Not more: the backlog
    stays in the durable queue, and a sync call goes ahead of every attempt waiting in the pool
    (it waits at most for one running attempt to finish)."""
    return max(1, 4 * spec.max_instances * spec.concurrency)


class AsyncInvoker:
    def __init__(
        self,
        queue: Queue,
        invoke: Invoke,
        lookup: Callable[[str], FunctionRecord],
        config_of: Callable[[str], AsyncSpec | None],
        *,
        max_in_flight: int = 256,
        region: str = "us-east-1",
        clock: Callable[[], float] = time.time,
        send: Send | None = None,
        on_dead: Callable[[str, str], None] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.tracing = tracing or Tracing.off()
        self.region = region
        # Told of each event that ended without success: (function, "failed" or "expired").
        self._on_dead = on_dead
        # Sends a message to a platform queue (a destination ``mlambda://NAME``).
        self._send = send
        self.queue = queue
        self._invoke = invoke
        # The function's current record; raises FunctionNotFound once it is removed.
        self._lookup = lookup
        # [function.async], or what the Lambda API set over it (None: the defaults).
        self._config_of = config_of
        self.max_in_flight = max_in_flight
        self.clock = clock
        self._wake = asyncio.Event()
        self._in_flight: dict[str, int] = {}
        self._attempts: set[asyncio.Task[None]] = set()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    # -- accepting ------------------------------------------------------------------------------

    async def accept(
        self,
        function: str,
        payload: bytes,
        idempotency_key: str | None = None,
        version: str = "",
        trace: TraceContext | None = None,
    ) -> Record:
        """Store the event (durably, before returning) and wake the dispatcher. ``version``:
        the published version to run (a qualified call, its alias resolved now); "" runs
        $LATEST as it is when the event runs."""
        config = self._config_of(function) or AsyncSpec()
        now = self.clock()
        record = await self.queue.put(
            Record(
                id=str(uuid.uuid4()),
                function=function,
                payload=payload,
                max_attempts=1 + config.maximum_retry_attempts,
                max_age_s=config.maximum_event_age_s,
                retry_delay_s=config.retry_delay_s,
                enqueued_at=now,
                updated_at=now,
                idempotency_key=idempotency_key or None,
                version=version,
                trace=_traceparent(trace or REQUEST_SPAN.get()),
            )
        )
        self._wake.set()
        return record

    # -- dispatching ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start dispatching (in the background: a broker that is down now is waited for)."""
        self._loop = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        await self._stored("recovering the async queue", self._recover)
        await self._dispatch()

    async def _recover(self) -> None:
        recovered = await self.queue.recover(self.clock())
        if recovered:
            log.warning("%d asynchronous invocations were running when serve stopped", recovered)
        for record in await self.queue.pending_deliveries():
            self._deliver(record.id)

    async def _stored(self, what: str, write: Callable[[], Awaitable[None]]) -> None:
        """``write`` until it succeeds: a queue that is down now (a broker restarting) is
        waited for, so an outcome is not left running until the next start."""
        delay = STORE_RETRY_S
        while True:
            try:
                await write()
                return
            except Exception as exc:
                log.warning("%s failed (%s); trying again in %.0f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, STORE_RETRY_MAX_S)

    async def stop(self) -> None:
        """Stop leasing; attempts still running are left running (the next start queues them
        again, each counted as an attempt)."""
        tasks = [t for t in (self._loop, *self._attempts, *self._deliveries) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.queue.close()

    def _room(self, function: str) -> int:
        """Attempts of ``function`` that may start now (0 once it was removed: its events are
        failed by the attempt that finds it gone, one at a time)."""
        return max(0, self._slots(function) - self._in_flight.get(function, 0))

    def _slots(self, function: str) -> int:
        try:
            return async_slots(self._lookup(function).spec)
        except FunctionNotFound:
            return 1

    def _full(self) -> set[str]:
        return {function for function in self._in_flight if self._room(function) == 0}

    async def _dispatch(self) -> None:
        while True:
            self._wake.clear()
            records: list[Record] = []
            free = self.max_in_flight - sum(self._in_flight.values())
            if free > 0:
                try:
                    records = await self.queue.lease_many(
                        self.clock(), 3600.0, self._room, min(free, LEASE_BATCH)
                    )
                except Exception:
                    log.exception("the async queue could not be read; retrying in 1 s")
                    await asyncio.sleep(1)
                    continue
            for record in records:
                self._start_attempt(record)
            if records:
                continue
            await self._sleep()

    async def _sleep(self) -> None:
        timeout = None
        if sum(self._in_flight.values()) < self.max_in_flight:
            try:
                due = await self.queue.next_visible(self.clock(), self._full())
            except Exception:
                log.exception("the async queue could not be read; retrying in 1 s")
                due = self.clock() + 1
            if due is not None:
                timeout = max(0.0, due - self.clock())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _start_attempt(self, record: Record) -> None:
        self._in_flight[record.function] = self._in_flight.get(record.function, 0) + 1
        task = asyncio.get_running_loop().create_task(self._attempt(record))
        self._attempts.add(task)
        task.add_done_callback(self._attempts.discard)

    def _free(self, function: str) -> None:
        """The attempt left the pool: its slot is free for the next (before its outcome is
        written, so an instance does not wait on the queue's commit)."""
        left = self._in_flight[function] - 1
        if left:
            self._in_flight[function] = left
        else:
            del self._in_flight[function]
        # Leased again once half its slots are free: attempts still wait in the pool, and one
        # lease of several events costs the queue less than several leases of one.
        if self._room(function) >= max(1, self._slots(function) // 2):
            self._wake.set()

    async def _attempt(self, record: Record) -> None:
        try:
            outcome = await self._call(record)
        finally:
            self._free(record.function)
        # Until stored, the event stays running (a stop now leaves it to the next start).
        await self._stored(f"storing the outcome of {record.id}", outcome)

    async def _call(self, record: Record) -> Callable[[], Coroutine[Any, Any, None]]:
        """Run the attempt; returns what writes its outcome."""
        if self.clock() - record.enqueued_at >= record.max_age_s:
            return lambda: self._end(record, EXPIRED, _expired(record))
        accepted = parse_traceparent(record.trace) if record.trace else None
        attempt, started = child_of(accepted), time.time_ns()
        try:
            # A version chosen at accept (a qualified call) runs; else $LATEST as it is now.
            invocation = await self._invoke(
                record.function,
                record.payload,
                request_id=record.id,
                background=True,
                qualifier=record.version,
                trace=attempt,
            )
        except FunctionNotFound:
            error = {
                "errorType": "ResourceNotFoundException",
                "errorMessage": f"function {record.function!r} was removed before the event ran",
            }
            return lambda: self.queue.end(record.id, self.clock(), FAILED, error)  # no config
        except Throttled:
            return lambda: self.queue.release(record.id, self.clock(), BACKPRESSURE_S)
        except MlambdaError as exc:
            body = exc.to_body()
            return lambda: self._failed(record, body)
        except Exception:
            log.exception("asynchronous invocation %s failed in the platform", record.id)
            error = {"errorType": "ServiceException", "errorMessage": "internal error; see the log"}
            return lambda: self._failed(record, error)
        finally:
            self._traced(record, accepted, attempt, started)
        if invocation.error is not None:
            body = invocation.error.to_body()
            return lambda: self._failed(record, body)
        return lambda: self._succeeded(record, invocation.body, invocation.version)

    def _traced(
        self, record: Record, accepted: TraceContext | None, attempt: TraceContext, started: int
    ) -> None:
        """The attempt's span, under the accepting call's; the first waited in the queue."""
        if not self.tracing.enabled:
            return
        attributes: dict[str, str | int] = {
            "faas.invocation_id": record.id,
            "mlambda.attempt": record.attempts,
        }
        self.tracing.emit(f"async attempt {record.function}", attempt, accepted, started,
                          time.time_ns(), kind="consumer", attributes=attributes)  # fmt: skip
        if record.attempts <= 1:
            queued = int(record.enqueued_at * 1e9)
            self.tracing.emit("async queue wait", child_of(attempt), attempt, queued, started)

    async def _succeeded(self, record: Record, body: bytes, version: str) -> None:
        destination = self._destination(record.function, "on_success")
        await self.queue.ack(record.id, self.clock(), body, version, destination)
        if destination:
            self._deliver(record.id)

    async def _failed(self, record: Record, error: dict[str, Any]) -> None:
        now = self.clock()
        decision = after_failure(record, now)
        if decision.action == "retry":
            await self.queue.retry(record.id, now, decision.delay_s, error)
        elif decision.action == EXPIRED:
            await self._end(record, EXPIRED, {**_expired(record), "lastError": error})
        else:
            await self._end(record, FAILED, error)

    async def _end(self, record: Record, state: str, error: dict[str, Any]) -> None:
        destination = self._destination(record.function, "on_failure")
        await self.queue.end(record.id, self.clock(), state, error, destination)
        if self._on_dead is not None:
            self._on_dead(record.function, state)
        if destination:
            self._deliver(record.id)

    def _destination(self, function: str, field: str) -> str:
        try:
            config = self._config_of(function)
        except FunctionNotFound:
            return ""
        return getattr(config, field) if config is not None else ""

    def _deliver(self, id: str) -> None:
        """Send a finished event's outcome to its destination, in the background."""

        async def send() -> None:
            record = await self.queue.get(id)
            if record is None or record.delivery != "pending":
                return
            reason = await deliver(
                record, self.region, self._accept_record, self._send_message, asyncio.sleep
            )
            if reason:
                log.warning("destination of %s: %s", id, reason)
            await self.queue.delivered(id, not reason, reason)

        task = asyncio.get_running_loop().create_task(self._stored(f"delivering {id}", send))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _accept_record(self, function: str, body: bytes) -> None:
        await self.accept(function, body)

    async def _send_message(self, queue: str, body: bytes) -> None:
        if self._send is None:
            raise RuntimeError("this platform has no queues")
        await self._send(queue, body)


def _expired(record: Record) -> dict[str, Any]:
    age = math.floor(record.max_age_s)
    return {
        "errorType": "EventAgeExceeded",
        "errorMessage": f"the event was not processed within maximum_event_age_s ({age} s)",
    }


def _traceparent(trace: TraceContext | None) -> str:
    return traceparent(trace) if trace is not None else ""
