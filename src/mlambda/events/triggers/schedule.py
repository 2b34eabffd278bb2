"""Schedule triggers: at each fire time of a ``rate(...)`` or ``cron(...)`` expression, one
asynchronous invocation with EventBridge's Scheduled Event (or the trigger's ``input``).

Every gateway on a registry runs each schedule; the one that moves the trigger's checkpoint past
a fire time (a compare-and-set in the registry) fires it, the others see it taken. A fire is
claimed, queued with an idempotency key naming the trigger and the time, then marked done; a
gateway that stopped between the claim and the mark has its fire queued again when a gateway
starts (the key makes it one invocation). ``catch_up = "latest"`` runs the last fire missed
while no gateway ran; ``"none"`` skips what was missed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from mlambda.events import cron
from mlambda.events.shapes import bus_event, schedule_arn
from mlambda.events.triggers.state import RUNNING, TriggerState
from mlambda.events.triggers.store import Trigger, TriggerStore

log = logging.getLogger("mlambda.triggers")
Accept = Callable[..., Awaitable[Any]]
RETRY_S = 1.0  # after a failed claim or queueing: the fire is tried again this much later


def scheduled_event(trigger: Trigger, at: float, region: str) -> dict[str, Any]:
    """EventBridge's Scheduled Event for the fire at ``at`` (its id the same for every try)."""
    return bus_event(
        "aws.events",
        "Scheduled Event",
        {},
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlambda:{trigger.id}:{at}")),
        at=at,
        region=region,
        resources=[schedule_arn(region, trigger.function, trigger.id)],
    )


def catch_up_fire(trigger: Trigger, last: float, now: float) -> float | None:
    """Pure: the fire to run now for those missed since ``last`` (None: none, or not wanted)."""
    spec = trigger.spec
    if spec.catch_up != "latest":
        return None
    schedule = cron.parse_schedule(spec.schedule)
    missed = cron.previous_fire(schedule, now, spec.timezone, trigger.created_at)
    return missed if missed is not None and missed > last else None


class ScheduleTrigger:
    def __init__(
        self,
        trigger: Trigger,
        store: TriggerStore,
        accept: Accept,
        state: TriggerState,
        *,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.trigger = trigger
        self.store = store
        self.accept = accept
        self.state = state
        self.region = region
        self.clock = clock
        self.schedule = cron.parse_schedule(trigger.spec.schedule)

    def next_fire(self, after: float) -> float | None:
        spec = self.trigger.spec
        return cron.next_fire(self.schedule, after, spec.timezone, self.trigger.created_at)

    async def run(self) -> None:
        id = self.trigger.id
        now = self.clock()
        last = await asyncio.to_thread(self.store.baseline, id, now)
        pending = await asyncio.to_thread(self.store.pending_fire, id)
        if pending is not None:
            await self._queue(pending)
        missed = catch_up_fire(self.trigger, last, now)
        if missed is not None:
            await self._fire(missed)
        self.state.state = RUNNING
        cursor = max(last, now)
        while (at := self.next_fire(cursor)) is not None:
            await asyncio.sleep(max(0.0, at - self.clock()))
            await self._fire(at)
            cursor = at
        self.state.failed("the schedule has no fire time left (its year field is past)")

    async def _fire(self, at: float) -> None:
        claim = functools.partial(asyncio.to_thread, self.store.claim_fire, self.trigger.id, at)
        if await self._retrying(claim):
            await self._retrying(functools.partial(self._queue, at))

    async def _retrying(self, step: Callable[[], Awaitable[Any]]) -> Any:
        """``step`` until it succeeds (the registry or the queue may be away for a while)."""
        while True:
            try:
                return await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.state.failed(f"{type(exc).__name__}: {exc}")
                log.warning("trigger %s of %s: %s", self.trigger.id, self.trigger.function, exc)
                await asyncio.sleep(RETRY_S)

    async def _queue(self, at: float) -> None:
        spec = self.trigger.spec
        body = (
            spec.input if spec.input is not None else scheduled_event(self.trigger, at, self.region)
        )
        await self.accept(
            self.trigger.function,
            msgspec.json.encode(body),
            idempotency_key=f"schedule:{self.trigger.id}:{at:.3f}",
        )
        await asyncio.to_thread(self.store.fired, self.trigger.id, at)
        self.state.batch({"succeeded": 1})
