"""The triggers of every function, running: one task per enabled trigger that reads something
(a queue, a stream, a bucket or folder it watches, a schedule), started with the platform,
changed by deploys ([[triggers]]) and by the API, stopped when disabled, deleted or when their
function is removed. Rule triggers and object triggers with ``mode = "notify"`` run no task:
the event bus and the S3 notification route ask for them (``rules``, ``notified``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from mlambda.events import bus
from mlambda.events.queues import PlatformQueues
from mlambda.events.triggers import notifications
from mlambda.events.triggers.broker import QueueBroker
from mlambda.events.triggers.config import RULE, SCHEDULE, TriggerSpec
from mlambda.events.triggers.listing import BucketLister, FolderLister
from mlambda.events.triggers.objects import ObjectTrigger
from mlambda.events.triggers.queue import QueueTrigger
from mlambda.events.triggers.schedule import ScheduleTrigger
from mlambda.events.triggers.seen import SeenObjects
from mlambda.events.triggers.sources import OBJECT, STREAM
from mlambda.events.triggers.state import (
    DISABLED,
    RUNNING,
    STOPPED,
    TriggerMetrics,
    TriggerState,
)
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
        self._listening: dict[str, Trigger] = {}  # rules and notified object triggers, running
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
        """A deploy's [[triggers]] become the function's config triggers (and run here, when
        another gateway on the registry made them)."""
        changed = self.store.sync(function, specs)
        if changed or any(t.id not in self._states for t in self.store.list(function)):
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

    # -- what the event bus and the S3 notification route ask ------------------------------

    async def put_events(self, body: Any) -> dict[str, Any]:
        rules = [t for t in self._listening.values() if t.spec.type == RULE]
        return await bus.put_events(body, rules, self._accept, self.region, self._queued)

    async def notify(self, body: Any) -> dict[str, Any]:
        notified = [t for t in self._listening.values() if t.spec.type == OBJECT]
        return await notifications.notify(body, notified, self._accept, self.region, self._queued)

    def _queued(self, trigger: Trigger) -> None:
        """An event queued for a rule or notified trigger: its state counts it."""
        state = self._states.get(trigger.id)
        if state is not None:
            state.batch({"succeeded": 1})

    def environment(self, function: str) -> dict[str, str]:
        """What a function's instances are given to read the store its object trigger names
        with plain boto3 (the first s3:// trigger that names an endpoint or credentials)."""
        for trigger in self.store.list(function):
            spec = trigger.spec
            if spec.type != OBJECT or trigger.source.broker != "s3":
                continue
            env = {"AWS_ENDPOINT_URL_S3": spec.endpoint_url} if spec.endpoint_url else {}
            if spec.access_key_id:
                env["AWS_ACCESS_KEY_ID"] = spec.access_key_id
                env["AWS_SECRET_ACCESS_KEY"] = spec.secret_access_key
            if env:
                return env
        return {}

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
            runner = self._runner(trigger, record, state)
        except Exception as exc:
            state.state = STOPPED
            state.failed(f"{type(exc).__name__}: {exc}")
            return
        if runner is None:  # fed by a route: running while it is listed
            self._listening[trigger.id] = trigger
            state.state = RUNNING
            return
        task = asyncio.get_running_loop().create_task(runner.run())
        self._tasks[trigger.id] = task

    def _runner(
        self, trigger: Trigger, record: FunctionRecord, state: TriggerState
    ) -> QueueTrigger | StreamTrigger | ObjectTrigger | ScheduleTrigger | None:
        spec = trigger.spec
        if spec.type == RULE or (spec.type == OBJECT and spec.mode == "notify"):
            return None
        if spec.type == SCHEDULE:
            return ScheduleTrigger(trigger, self.store, self._accept, state, region=self.region)
        if spec.type == OBJECT:
            source = trigger.source
            lister = (
                BucketLister(spec, source) if source.broker == "s3" else FolderLister(spec, source)
            )
            seen = SeenObjects(self.store.engine, trigger.id)
            return ObjectTrigger(trigger, lister, seen, self._accept, state, region=self.region)
        broker = self._broker(trigger, record)
        if isinstance(broker, StreamReader):
            return StreamTrigger(
                trigger,
                broker,
                self._invoke,
                self._deliver,
                self.store,
                state,
                region=self.region,
            )
        return QueueTrigger(
            trigger,
            broker,
            self._invoke,
            self.queues.send,
            state,
            max_concurrency=trigger.spec.max_concurrency or record.spec.max_instances,
            region=self.region,
        )

    async def _halt(self, id: str) -> None:
        self._listening.pop(id, None)
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
