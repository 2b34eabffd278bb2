"""A stream trigger at work, by Kinesis's rules: records are read in order from the trigger's
checkpoint and split into ``parallelization_factor`` lanes by partition key; each lane runs
its batches one after another, so the records of one key are handed over in order. A failed
batch is retried (or bisected) from its first failed record, by outcomes.after_stream_batch;
records given up on go to ``on_failure`` as Lambda's failure record names them.

The checkpoint (in the registry) moves past a record once it and every record before it are
finished, so after a crash, a restart or a reconnect the trigger reads again from there: a
record may be handed over twice, but a key's records never out of order.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import json
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from mlambda.errors import MlambdaError, Throttled
from mlambda.events.shapes import StreamRecord, kinesis_event, stream_arn, stream_retry_from
from mlambda.events.triggers.broker import supervise
from mlambda.events.triggers.outcomes import after_stream_batch, expired
from mlambda.events.triggers.queue import Invoke, retry_delay
from mlambda.events.triggers.state import TriggerState
from mlambda.events.triggers.store import Trigger, TriggerStore
from mlambda.events.triggers.stream_broker import StreamReader

IDLE_WAIT_S = 1.0
THROTTLED_S = 0.5
# Records read ahead of the lanes, per lane, in batches.
READ_AHEAD_BATCHES = 2
Deliver = Callable[[str, bytes], Awaitable[Any]]


def lane_of(partition_key: str, lanes: int) -> int:
    return zlib.crc32(partition_key.encode()) % lanes if lanes > 1 else 0


def failure_record(
    trigger: Trigger, records: list[StreamRecord], condition: str, attempts: int, region: str
) -> dict[str, Any]:
    """What Lambda sends a Kinesis mapping's on-failure destination: the batch's place in the
    stream, not its data (read it from the stream)."""
    first, last = records[0], records[-1]
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": trigger.function,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": ""},
        "version": "1.0",
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
        "KinesisBatchInfo": {
            "shardId": first.shard,
            "startSequenceNumber": first.sequence,
            "endSequenceNumber": last.sequence,
            "approximateArrivalOfFirstRecord": _iso(first.arrived_at),
            "approximateArrivalOfLastRecord": _iso(last.arrived_at),
            "batchSize": len(records),
            "streamArn": stream_arn(region, trigger.source.name),
        },
    }


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat()


class StreamTrigger:
    def __init__(
        self,
        trigger: Trigger,
        reader: StreamReader,
        invoke: Invoke,
        deliver: Deliver,
        store: TriggerStore,
        state: TriggerState,
        *,
        region: str,
    ) -> None:
        self.trigger = trigger
        self.spec = trigger.spec
        self.reader = reader
        self._invoke = invoke
        self._deliver = deliver  # (on_failure target, the failure record as JSON)
        self.store = store
        self.state = state
        self.region = region
        self.lanes = self.spec.parallelization_factor

    async def run(self) -> None:
        await supervise(self.trigger, self.reader.broker, self.state, self._session, self.reader)

    async def _session(self) -> None:
        position = await asyncio.to_thread(self.store.checkpoint, self.trigger.id)
        if position is None:
            spec = self.spec
            position = await self.reader.start(
                spec.starting_position, spec.starting_position_timestamp
            )
            await asyncio.to_thread(self.store.save_checkpoint, self.trigger.id, position)
        self._order: collections.deque[str] = collections.deque()  # read, not yet checkpointed
        self._finished: set[str] = set()
        queues = [collections.deque[StreamRecord]() for _ in range(self.lanes)]
        wakes = [asyncio.Event() for _ in range(self.lanes)]
        room = asyncio.Event()
        lanes = [
            asyncio.ensure_future(self._lane(queues[i], wakes[i], room)) for i in range(self.lanes)
        ]
        try:
            await self._read(position, queues, wakes, room, lanes)
        finally:
            for task in lanes:
                task.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)

    async def _read(
        self,
        after: str,
        queues: list[collections.deque[StreamRecord]],
        wakes: list[asyncio.Event],
        room: asyncio.Event,
        lanes: list[asyncio.Task[None]],
    ) -> None:
        ahead = self.spec.size * READ_AHEAD_BATCHES * self.lanes
        while True:
            for task in lanes:
                if task.done():
                    task.result()  # a lane's failure is the session's
            if len(self._order) >= ahead:
                room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(room.wait(), IDLE_WAIT_S)
                continue
            records = await self.reader.read(after, ahead - len(self._order), IDLE_WAIT_S)
            for record in records:
                lane = lane_of(record.partition_key, self.lanes)
                queues[lane].append(record)
                wakes[lane].set()
                self._order.append(record.sequence)
                after = record.sequence
            if records:
                self.state.aged(max(0.0, time.time() - records[-1].arrived_at))

    async def _lane(
        self, queue: collections.deque[StreamRecord], wake: asyncio.Event, room: asyncio.Event
    ) -> None:
        attempts, next_size = 0, None
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            size = next_size or self.spec.size
            if len(queue) < size and self.spec.max_batching_window_s > 0 and next_size is None:
                with contextlib.suppress(TimeoutError):
                    wake.clear()
                    await asyncio.wait_for(wake.wait(), self.spec.max_batching_window_s)
            batch = [queue[i] for i in range(min(size, len(queue)))]
            old = expired(
                [r.arrived_at for r in batch], time.time(), self.spec.maximum_record_age_s
            )
            if old:
                await self._give_up(batch[:old], "RecordAgeExceeded", attempts + 1)
                await self._finish(queue, old, room, given_up=old)
                attempts, next_size = 0, None
                continue
            error, resume_at = await self._call(batch)
            if error == "throttled":  # no capacity now: not the batch's failure
                await asyncio.sleep(THROTTLED_S)
                continue
            step = after_stream_batch(self.spec, len(batch), attempts, resume_at, error is not None)
            if step.give_up:
                failed = batch[step.done : step.done + step.give_up]
                await self._give_up(failed, "RetryAttemptsExhausted", attempts + 1)
            if step.done or step.give_up:
                await self._finish(queue, step.done + step.give_up, room, given_up=step.give_up)
            retried = step.next_size is not None and step.attempts > attempts
            attempts, next_size = step.attempts, step.next_size
            if retried:
                self.state.batch({"retried": len(batch) - step.done})
                await asyncio.sleep(retry_delay(attempts))

    async def _call(self, batch: list[StreamRecord]) -> tuple[str | None, int | None]:
        """(an error, or None; where the batch resumes when the handler named failures)."""
        event = kinesis_event(batch, self.reader.broker, self.reader.name, self.region)
        try:
            invocation = await self._invoke(self.trigger.function, msgspec.json.encode(event))
        except Throttled:
            return "throttled", None
        except MlambdaError as exc:
            self.state.failed(f"{type(exc).__name__}: {exc}")
            return "error", None
        if invocation.error is not None:
            self.state.failed(f"{invocation.error.error_type}: {invocation.error.message}")
            return "error", None
        if not self.spec.report_batch_item_failures:
            return None, None
        try:
            answer = json.loads(invocation.body) if invocation.body.strip() else None
        except ValueError:
            return "error", None
        return None, stream_retry_from(answer, [r.sequence for r in batch])

    async def _finish(
        self,
        queue: collections.deque[StreamRecord],
        count: int,
        room: asyncio.Event,
        given_up: int = 0,
    ) -> None:
        """The lane's first ``count`` records are finished: the checkpoint moves past every
        record finished with all those before it."""
        for _ in range(count):
            self._finished.add(queue.popleft().sequence)
        moved = None
        while self._order and self._order[0] in self._finished:
            moved = self._order.popleft()
            self._finished.discard(moved)
        if moved is not None:
            await asyncio.to_thread(self.store.save_checkpoint, self.trigger.id, moved)
        self.state.batch({"succeeded": count - given_up, "given_up": given_up})
        room.set()

    async def _give_up(self, records: list[StreamRecord], condition: str, attempts: int) -> None:
        target = self.spec.on_failure
        if not target:
            return
        record = failure_record(self.trigger, records, condition, attempts, self.region)
        await self._deliver(target, json.dumps(record).encode())
