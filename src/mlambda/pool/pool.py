"""The pool of one function version: free slot -> dispatch; else queue and scale; deadlines.

All state lives on the event loop thread; no locks. Scaling decisions come from ``scaling``;
an instance's start, watch and idle stop are in lifecycle.py, filling batches in batching.py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from collections.abc import Callable

from mlambda.backends.base import Backend
from mlambda.backends.limits import ResourceLimits
from mlambda.errors import (
    FunctionError,
    FunctionTimeout,
    MlambdaError,
    ServiceUnavailable,
    Throttled,
    function_error,
)
from mlambda.pool import scaling
from mlambda.pool.batching import Batching
from mlambda.pool.capacity import Capacity
from mlambda.pool.instance import Instance, Outcome, State, out_of_memory
from mlambda.pool.invocation import Invocation, Observer
from mlambda.pool.item import Item
from mlambda.pool.lifecycle import Lifecycle
from mlambda.pool.threads import threads_for
from mlambda.registry.model import FunctionRecord
from mlambda.runtime import protocol
from mlambda.runtime.trace_header import TraceContext

# How often a busy instance's RSS is sampled when no cgroup enforces memory_mb.
MEMORY_SAMPLE_S = 0.05


class Pool(Batching, Lifecycle):
    def __init__(
        self,
        record: FunctionRecord,
        task_root: str,
        backend: Backend,
        *,
        observer: Observer | None = None,
        base_env: dict[str, str] | None = None,
        max_response_bytes: int = 6 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
        limits: ResourceLimits | None = None,
        sandbox: protocol.Sandbox | None = None,
        secrets: dict[str, str] | None = None,
        capacity: Capacity | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.region = region
        # Places for instances shared with every other pool (--max-instances-total).
        self.capacity = capacity
        self.limits = limits
        self.sandbox = sandbox
        # [function.secrets] values: into the instances' environment only, never logged.
        self.secrets = secrets or {}
        self.record = record
        self.spec = record.spec
        self.task_root = task_root
        self.backend = backend
        self.observer = observer or Observer()
        self.base_env = base_env or {}
        self.max_response_bytes = max_response_bytes
        self.clock = clock
        self.instances: list[Instance] = []
        # A model function's signature, once an instance has told it (inference protocol).
        self.metadata: bytes | None = None
        self.starting = 0
        # Instances provisioned concurrency keeps started for this version (provision()).
        self.provisioned = 0
        self.closed = False
        self._queue: collections.deque[Item] = collections.deque()
        # Batches a request is still filling (max_wait_ms), and a signal for new arrivals.
        self._collecting: list[list[Item]] = []
        self._arrival = asyncio.Event()
        self._tasks: set[asyncio.Task[object]] = set()
        self._idle_timers: dict[str, asyncio.TimerHandle] = {}

    # -- invoking -----------------------------------------------------------------------------

    async def invoke(
        self,
        payload: bytes,
        request_id: str | None = None,
        client_context: str | None = None,
        *,
        kind: str = "",
        params: dict[str, str] | None = None,
        qualifier: str = "",
        background: bool = False,
        trace: TraceContext | None = None,
    ) -> Invocation:
        """Run one invocation; raises Throttled, or returns an Invocation (maybe with .error).

        ``kind`` and ``params`` tell a model function how to read the payload (protocol.Invoke).
        With [function.batch], the request that gets an instance takes queued requests along
        in the same call; each caller still gets its own Invocation."""
        if self.closed:
            raise ServiceUnavailable(f"function {self.spec.name!r} is being replaced or removed")
        item = Item(request_id or str(uuid.uuid4()), payload, client_context, kind, params or {})
        item.qualifier = qualifier
        item.background = background
        item.trace = trace
        item.queued_at = self.clock()
        instance = self._take_free_instance() or await self._wait_for_instance(item)
        if instance is None:  # another request took this one into its batch
            return await item.joined
        if self.spec.batch is None:
            item.dequeued(self.clock())
            try:
                return (await self._run(instance, [item]))[0]
            finally:
                self._release(instance)
        # The batch runs on its own task: should this caller go away, the others it carries
        # still get their answers, and the instance is released only once the call is over.
        work = asyncio.get_running_loop().create_task(self._run_batch(instance, item))
        self._tasks.add(work)
        work.add_done_callback(self._tasks.discard)
        return await asyncio.shield(work)

    async def _run(self, instance: Instance, items: list[Item]) -> list[Invocation]:
        first = instance.served == 0
        instance.served += len(items)
        timeout = self.spec.timeout_s
        deadline_ms = int((time.time() + timeout) * 1000)
        busy = sum(1 for other in self.instances if other is not instance and other.active)
        threads = threads_for(self.spec, busy)
        requests = [item.request(deadline_ms, threads) for item in items]
        results = [
            item.invocation(instance.id, instance.pid, len(items), self.record.version)
            for item in items
        ]
        if first:
            results[0].init_ms = instance.init_ms
            results[0].init_tier = instance.tier
            results[0].init_parts = instance.init_parts
        started = time.perf_counter()
        watchdog = self._watch_memory(instance)
        try:
            async with asyncio.timeout(timeout):
                outcomes = await _outcomes(instance.invoke_all(requests))
        except TimeoutError:
            instance.kill()  # the instance may be stuck anywhere: only a kill is certain
            for result in results:
                result.duration_ms = timeout * 1000
                result.error = FunctionTimeout(
                    {
                        "errorType": "Sandbox.Timedout",
                        "errorMessage": f"Task timed out after {timeout:.2f} seconds",
                        "requestId": result.request_id,
                    }
                )
        else:
            for result, outcome in zip(results, outcomes, strict=True):
                self._settle(instance, result, outcome, started)
        finally:
            if watchdog is not None:
                watchdog.cancel()
        for result in results:
            self.observer.invocation(self.record, result)
        if first:
            instance.process.settled()
        return results

    def _settle(
        self, instance: Instance, result: Invocation, outcome: object, started: float
    ) -> None:
        if isinstance(outcome, FunctionError):
            result.duration_ms = (time.perf_counter() - started) * 1000
            result.error = (
                out_of_memory(instance, result.request_id, self.spec.memory_mb) or outcome
            )
            result.rows = 0
            return
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, protocol.Result | protocol.Failure)
        result.logs = outcome.logs
        result.duration_ms = outcome.duration_ms
        result.max_memory_mb = outcome.max_memory_mb
        result.batch_size = outcome.batch_size
        result.cpu_ms = outcome.cpu_ms
        result.rows = outcome.rows
        result.spans = outcome.spans
        if isinstance(outcome, protocol.Failure):
            result.error = function_error(outcome.error)
        else:
            result.body = outcome.body
            result.headers = outcome.headers

    def _watch_memory(self, instance: Instance) -> asyncio.Task[None] | None:
        """Sample RSS while the invocation runs, where no cgroup enforces the limit."""
        guard = instance.guard
        if guard is None or not guard.polled:
            return None

        async def watch() -> None:
            while not guard.check():
                await asyncio.sleep(MEMORY_SAMPLE_S)

        return asyncio.get_running_loop().create_task(watch())

    def _take_free_instance(self) -> Instance | None:
        # Oldest first: load packs onto few instances, so the rest go idle and scale in.
        for instance in self.instances:
            if instance.state is State.READY and instance.active < self.spec.concurrency:
                self._reserve(instance)
                return instance
        return None

    def _reserve(self, instance: Instance) -> None:
        instance.active += 1
        timer = self._idle_timers.pop(instance.id, None)
        if timer is not None:
            timer.cancel()

    def _release(self, instance: Instance) -> None:
        instance.active -= 1
        if instance.state is State.READY:
            self._hand_out()
            if instance.active == 0:
                instance.idle_since = self.clock()
                self._arm_idle_timer(instance)
        self._report_instances()

    async def _wait_for_instance(self, item: Item) -> Instance | None:
        """Queue until an instance is free (or, with batching, until another request takes
        this one into its batch: None)."""
        waiter: asyncio.Future[Instance | None] = asyncio.get_running_loop().create_future()
        item.waiter = waiter
        # The queue holds sync calls first, then the asynchronous backlog (sync calls keep
        # their priority): a sync call goes before the first background item, if any.
        if item.background or not self._queue or not self._queue[-1].background:
            self._queue.append(item)
        else:
            first_background = next(i for i, queued in enumerate(self._queue) if queued.background)
            self._queue.insert(first_background, item)
        self._arrival.set()
        self._scale()
        queued_at = self.clock()
        try:
            while True:
                remaining = queued_at + self.spec.queue_timeout - self.clock()
                # While an instance is starting for this queue, the wait extends to its init.
                if self.starting:
                    remaining += self.spec.init_timeout_s
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        return await asyncio.shield(waiter)
        finally:
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self._queue.remove(item)
        platform_full = " (the platform is at --max-instances-total)"
        refusal = Throttled(
            f"Rate exceeded: no instance of {self.spec.name!r} was free within "
            f"{self.spec.queue_timeout:g} s (max_instances = {self.spec.max_instances}, "
            f"concurrency = {self.spec.concurrency}); retry later or raise max_instances"
            + (platform_full if self.capacity is not None and self.capacity.full else "")
        )
        self.observer.throttled(self.record, refusal.message)
        raise refusal

    def _hand_out(self) -> None:
        """Give free slots to queued requests, oldest first."""
        while self._queue:
            waiter = self._queue[0].waiter
            if waiter is None or waiter.done():
                self._queue.popleft()
                continue
            instance = self._take_free_instance()
            if instance is None:
                return
            self._queue.popleft()
            waiter.set_result(instance)

    def _fail_queue(self, error: MlambdaError) -> None:
        while self._queue:
            waiter = self._queue.popleft().waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)

    # -- scaling ------------------------------------------------------------------------------

    def start(self) -> None:
        """Bring the pool to min_instances (provisioned concurrency)."""
        self._scale()

    @property
    def min_instances(self) -> int:
        """Instances kept started: the spec's min_instances, or what provisioned concurrency
        asks of this version (provisioning.py), whichever is more."""
        return max(self.spec.min_instances, self.provisioned)

    def provision(self, instances: int) -> None:
        lowered = instances < self.provisioned
        self.provisioned = instances
        self._scale()
        if lowered:  # idle instances kept for it stop after keep_alive_s, as any idle one
            for instance in self.instances:
                if instance.state is State.READY and instance.active == 0:
                    self._arm_idle_timer(instance)

    def prepare(self, template: bool = True) -> None:
        """Have the backend build what a start will need in the background: the runtime
        zygote, and the template too unless ``template`` is false."""
        self._spawn(self.backend.prepare(self._start_request("template"), template))

    def _scale(self) -> None:
        if self.closed:
            return
        running = sum(1 for i in self.instances if i.state is State.READY)
        if running + self.starting >= self.spec.max_instances:
            return  # no room to start one: no need to count the queue
        queued = sum(1 for i in self._queue if i.waiter is not None and not i.waiter.done())
        per_call = 1
        if self.spec.batch is not None:
            # A batch being collected will take some of the queue; one call serves max_size.
            per_call = self.spec.batch.max_size
            queued -= sum(per_call - len(batch) for batch in self._collecting)
        snapshot = scaling.Snapshot(
            queued=max(0, queued),
            running=running,
            starting=self.starting,
            concurrency=self.spec.concurrency * per_call,
            min_instances=self.min_instances,
            max_instances=self.spec.max_instances,
        )
        wanted = scaling.instances_to_start(snapshot)
        if self.capacity is not None and wanted:
            wanted = self.capacity.take(wanted, self._scale)
        for _ in range(wanted):
            # Counted now, not when the task first runs: a second _scale in this same turn of
            # the loop must see this start, or it would start past max_instances.
            self.starting += 1
            self._spawn(self._start_instance())

    # -- visibility and lifecycle -------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        busy = sum(1 for i in self.instances if i.state is State.READY and i.active)
        idle = sum(1 for i in self.instances if i.state is State.READY and not i.active)
        return {"starting": self.starting, "busy": busy, "idle": idle, "queued": len(self._queue)}

    def _report_instances(self) -> None:
        # Provisioned instances are the oldest: load packs onto them first.
        self.observer.instances(self.record, {**self.counts(), "provisioned": self.provisioned})

    async def drain(self, grace: float | None = None) -> None:
        """Stop taking requests; let queued and running ones finish; then stop every instance."""
        self.closed = True
        deadline = self.clock() + (grace if grace is not None else self.spec.timeout_s + 1)
        while (self._queue or any(i.active for i in self.instances)) and self.clock() < deadline:
            await asyncio.sleep(0.05)
        await self.close()

    async def close(self) -> None:
        """Stop every instance now; requests still waiting get ServiceUnavailable."""
        self.closed = True
        self._fail_queue(ServiceUnavailable(f"function {self.spec.name!r} was stopped"))
        for timer in self._idle_timers.values():
            timer.cancel()
        self._idle_timers.clear()
        await asyncio.gather(*(i.stop(grace=1.0) for i in list(self.instances)))
        await self.backend.release(self._start_request("release"))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.instances.clear()
        self._report_instances()


async def _outcomes(futures: list[asyncio.Future[Outcome]]) -> list[object]:
    """Each call's Result or Failure, or the exception it ended with (a gather that returns
    exceptions, without a gather's extra future for the single call of most invocations)."""
    if len(futures) == 1:
        try:
            return [await futures[0]]
        except Exception as exc:
            return [exc]
    return list(await asyncio.gather(*futures, return_exceptions=True))
