"""The triggers of every function, running: one task per enabled trigger, started with the
platform, changed by deploys ([[triggers]]) and by the API, stopped when disabled, deleted or
when their function is removed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from mlambda.events.queues import PlatformQueues
from mlambda.events.triggers.broker import QueueBroker
from mlambda.events.triggers.config import TriggerSpec
from mlambda.events.triggers.queue import QueueTrigger
from mlambda.events.triggers.sources import STREAM
from mlambda.events.triggers.state import DISABLED, STOPPED, TriggerMetrics, TriggerState
from mlambda.events.triggers.store import API, Trigger, TriggerStore
from mlambda.events.triggers.stream import StreamTrigger
from mlambda.events.triggers.stream_broker import StreamReader
from mlambda.pool.invocation import Invocation
from mlambda.registry.model import FunctionRecord

log = logging.getLogger("mlambda.triggers")
# A received message not acknowledged in this long past its function's timeout (and its wait
# for an instance) is delivered again.
VISIBILITY_MARGIN_S = 10.0


def visibility_s(record: FunctionRecord) -> float:
    spec = record.spec
    return spec.queue_timeout + spec.timeout_s + VISIBILITY_MARGIN_S


class Triggers:
    def __init__(
        self,
        store: TriggerStore,
        invoke: Callable[[str, bytes], Awaitable[Invocation]],
        queues: PlatformQueues,
        lookup: Callable[[str], FunctionRecord],
        registry: CollectorRegistry,
        region: str,
        accept: Callable[[str, bytes], Awaitable[Any]],
    ) -> None:
        self.store = store
        self._invoke = invoke
        self.queues = queues
        self._lookup = lookup  # the function's $LATEST record (FunctionNotFound when gone)
        self.metrics = TriggerMetrics(registry)
        self.region = region
        self._accept = accept  # an asynchronous invocation (on_failure = "function:NAME")
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._states: dict[str, TriggerState] = {}
        self._started = False

    async def start(self) -> None:
        self._started = True
        for trigger in self.store.list():
            self._run(trigger)

    async def stop(self) -> None:
        self._started = False
        for id in list(self._tasks):
            await self._halt(id)

    # -- what deploys and the API do ---------------------------------------------------------

    async def sync(self, function: str, specs: Sequence[TriggerSpec]) -> None:
        """A deploy's [[triggers]] become the function's config triggers."""
        if self.store.sync(function, specs):
            await self.restart(function)

    async def create(self, function: str, spec: TriggerSpec) -> Trigger:
        self._lookup(function)
        trigger = self.store.create(function, spec, API)
        self._run(trigger)
        return trigger

    async def set_enabled(self, id: str, enabled: bool) -> Trigger:
        trigger = self.store.set_enabled(id, enabled)
        await self._halt(id)
        self._run(trigger)
        return trigger

    async def delete(self, id: str) -> Trigger:
        trigger = self.store.delete(id)
        await self._halt(id)
        self._states.pop(id, None)
        self.metrics.forget(trigger.function, id)
        return trigger

    async def restart(self, function: str) -> None:
        """Stop the function's triggers and start those it has now (after a deploy)."""
        current = {t.id: t for t in self.store.list(function)}
        for id in [i for i, s in self._states.items() if s.function == function]:
            await self._halt(id)
            if id not in current:
                self._states.pop(id, None)
                self.metrics.forget(function, id)
        for trigger in current.values():
            self._run(trigger)

    async def forget(self, function: str) -> None:
        """The function was removed (its triggers with it, in the registry)."""
        for id in [i for i, s in self._states.items() if s.function == function]:
            await self._halt(id)
            self._states.pop(id, None)
            self.metrics.forget(function, id)

    def view(self, trigger: Trigger) -> dict[str, Any]:
        state = self._states.get(trigger.id)
        shown = (
            state.to_dict() if state else {"state": DISABLED if not trigger.enabled else STOPPED}
        )
        return {**trigger.to_dict(), "status": shown}

    # -- running -------------------------------------------------------------------------------

    def _run(self, trigger: Trigger) -> None:
        state = self._states.setdefault(
            trigger.id, TriggerState(trigger.function, trigger.id, self.metrics)
        )
        if not trigger.enabled or not self._started:
            state.state = DISABLED if not trigger.enabled else STOPPED
            return
        try:
            record = self._lookup(trigger.function)
            broker = self._broker(trigger, record)
        except Exception as exc:
            state.state = STOPPED
            state.failed(f"{type(exc).__name__}: {exc}")
            return
        runner: QueueTrigger | StreamTrigger
        if isinstance(broker, StreamReader):
            runner = StreamTrigger(
                trigger,
                broker,
                self._invoke,
                self._deliver,
                self.store,
                state,
                region=self.region,
            )
        else:
            runner = QueueTrigger(
                trigger,
                broker,
                self._invoke,
                self.queues.send,
                state,
                max_concurrency=trigger.spec.max_concurrency or record.spec.max_instances,
                region=self.region,
            )
        task = asyncio.get_running_loop().create_task(runner.run())
        self._tasks[trigger.id] = task

    async def _halt(self, id: str) -> None:
        task = self._tasks.pop(id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        state = self._states.get(id)
        if state is not None:
            state.state = STOPPED
            state.concurrency = 0

    async def _deliver(self, target: str, body: bytes) -> None:
        """A stream trigger's failure record to its on_failure destination."""
        if target.startswith("mlambda://"):
            await self.queues.send(target.removeprefix("mlambda://"), body)
        else:
            await self._accept(target.removeprefix("function:"), body)

    def _broker(self, trigger: Trigger, record: FunctionRecord) -> QueueBroker | StreamReader:
        from mlambda.events.triggers import mqtt, nats_queue, rabbitmq, redis_queue
        from mlambda.events.triggers.nats_stream import NatsStreamReader
        from mlambda.events.triggers.platform_queue import PlatformQueueBroker
        from mlambda.events.triggers.redis_stream import RedisStreamReader

        source, spec = trigger.source, trigger.spec
        if spec.type == STREAM and source.broker == "nats":
            return NatsStreamReader(source.url, source.name, source.options.get("subject", ""))
        if spec.type == STREAM:
            return RedisStreamReader(source.url, source.name)
        visibility = visibility_s(record)
        limit = spec.max_concurrency or record.spec.max_instances
        own = f"mlambda-{trigger.function}-{trigger.id[:8]}"
        if source.broker == "mlambda":
            return PlatformQueueBroker(source.name, visibility, self.queues)
        if source.broker == "rabbitmq":
            return rabbitmq.RabbitQueueBroker(
                source.url, source.name, visibility, spec.size * limit
            )
        if source.broker == "redis":
            group = source.options.get("group") or f"mlambda-{trigger.function}"
            return redis_queue.RedisQueueBroker(source.url, source.name, group, own, visibility)
        if source.broker == "nats":
            subject = source.options.get("subject", "")
            return nats_queue.NatsQueueBroker(
                source.url, source.name, subject, own, visibility, spec.size * limit * 2
            )
        return mqtt.MqttQueueBroker(source.url, source.name, own, visibility)
