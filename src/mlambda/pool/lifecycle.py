"""An instance's life in a pool: started (the backend, limits, Configure and init), watched
until it dies, stopped after keep_alive_s idle. A mixin of ``Pool`` (pool.py), which owns the
state used here and decides when to start (``_scale``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlambda.backends.base import Backend, StartRequest
from mlambda.backends.limits import ResourceLimits
from mlambda.errors import ExitError, InitError, MlambdaError, ServiceUnavailable
from mlambda.pool import scaling
from mlambda.pool.capacity import Capacity
from mlambda.pool.environment import instance_environment, model_config
from mlambda.pool.instance import Instance, State, out_of_memory
from mlambda.pool.invocation import Observer
from mlambda.pool.threads import cpu_cores, machine_cores, threads_for
from mlambda.registry.model import FunctionRecord
from mlambda.runtime import protocol
from mlambda.spec import FunctionSpec


class Lifecycle:
    record: FunctionRecord
    spec: FunctionSpec
    task_root: str
    backend: Backend
    observer: Observer
    base_env: dict[str, str]
    secrets: dict[str, str]
    region: str
    max_response_bytes: int
    clock: Callable[[], float]
    limits: ResourceLimits | None
    sandbox: protocol.Sandbox | None
    capacity: Capacity | None
    instances: list[Instance]
    starting: int
    closed: bool
    _tasks: set[asyncio.Task[object]]
    _idle_timers: dict[str, asyncio.TimerHandle]

    if TYPE_CHECKING:  # the pool's own (pool.py)

        @property
        def min_instances(self) -> int: ...

        def _scale(self) -> None: ...

        def _hand_out(self) -> None: ...

        def _fail_queue(self, error: MlambdaError) -> None: ...

        def _report_instances(self) -> None: ...

    def _spawn(self, coroutine: collections.abc.Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_instance(self) -> None:
        """Start one instance; ``self.starting`` was incremented for it by ``_scale``."""
        self._report_instances()
        instance_id = uuid.uuid4().hex[:12]
        try:
            instance = await self._launch(instance_id)
        except (InitError, ExitError) as exc:
            # Every queued request would meet the same failure: answer them all with it.
            self._give_back()
            self._fail_queue(exc)
            return
        except BaseException as exc:
            self._give_back()
            if not isinstance(exc, Exception):
                raise
            self._fail_queue(ServiceUnavailable(f"could not start an instance: {exc}"))
            return
        finally:
            self.starting -= 1
            self._report_instances()
        if self.closed:
            await instance.stop()
            self._give_back()
            return
        self.instances.append(instance)
        self._spawn(self._watch(instance))
        self._hand_out()
        if instance.active == 0:
            self._arm_idle_timer(instance)
        self._report_instances()

    def _start_request(self, instance_id: str) -> StartRequest:
        # Live besides this one: those serving and those starting (``starting`` counts this one).
        live = len(self.instances) + self.starting - 1
        threads = threads_for(self.spec, live)
        env = instance_environment(
            self.base_env,
            self.spec,
            self.record.version,
            self.task_root,
            instance_id,
            self.region,
            threads=threads,
        )
        env.update(self.secrets)
        return StartRequest(
            instance_id,
            self.record.version,
            self.spec,
            self.task_root,
            env,
            max_response_bytes=self.max_response_bytes,
            log=lambda text: self.observer.output(self.record, text),
            sandbox=self.sandbox,
            threads=threads,
        )

    async def _launch(self, instance_id: str) -> Instance:
        request = self._start_request(instance_id)
        process = await self.backend.start(request)
        guard, quota = process.guard, None
        if self.limits is not None:
            if guard is None:
                guard = self.limits.attach(process.pid, self.spec.memory_mb, instance_id)
            cores = cpu_cores(self.spec.cpu, self.spec.memory_mb, machine_cores())
            if cores:
                quota = self.limits.limit_cpu(process.pid, cores, instance_id)
        instance = Instance(
            instance_id,
            process,
            lambda text: self.observer.output(self.record, text),
            self.clock(),
        )
        instance.guard = guard
        instance.cpu_quota = quota
        config = protocol.Configure(
            instance_id=instance_id,
            function_name=self.spec.name,
            function_version=self.record.version,
            handler=self.spec.handler,
            task_root=self.task_root,
            memory_mb=self.spec.memory_mb,
            concurrency=self.spec.concurrency,
            max_response_bytes=self.max_response_bytes,
            preload=self.spec.modules_to_preload,
            # The whole Lambda environment: an instance forked from a zygote rather than a
            # template has only what the zygote had until it applies this.
            env=request.env,
            threads=request.threads,
            model=model_config(self.spec, request.threads),
            batched=self.spec.batch is not None and not self.spec.is_model,
            sandbox=self.sandbox,
        )
        try:
            await instance.configure(config, self.spec.init_timeout_s)
        except ExitError as exc:
            instance.kill()
            await instance.wait_dead()  # the limit's verdict is final once the process is gone
            raise (
                out_of_memory(instance, "", self.spec.memory_mb, " during init") or exc
            ) from None
        except BaseException:
            instance.kill()
            instance.process.writer.close()
            raise
        self.observer.instance_started(self.record, instance.tier)
        return instance

    async def _watch(self, instance: Instance) -> None:
        """When an instance dies (crash, kill, stop), forget it and top the pool back up."""
        await instance.wait_dead()
        for limit in (instance.guard, instance.cpu_quota):
            if limit is not None:
                limit.release()  # kills what the instance left behind (setsid'd or not)
        with contextlib.suppress(ValueError):
            self.instances.remove(instance)
        self._give_back()
        timer = self._idle_timers.pop(instance.id, None)
        if timer is not None:
            timer.cancel()
        self._report_instances()
        self._scale()

    def _give_back(self) -> None:
        if self.capacity is not None:
            self.capacity.give_back()

    def _arm_idle_timer(self, instance: Instance) -> None:
        loop = asyncio.get_running_loop()
        previous = self._idle_timers.pop(instance.id, None)
        if previous is not None:
            previous.cancel()
        self._idle_timers[instance.id] = loop.call_later(
            self.spec.keep_alive_s, self._reap_idle, instance
        )

    def _reap_idle(self, instance: Instance) -> None:
        self._idle_timers.pop(instance.id, None)
        if instance.state is not State.READY or instance.active:
            return
        # A loop's timers may fire a little early by this clock (uvloop keeps its own, in
        # whole milliseconds, read at the start of a turn): wait out the rest, never give up.
        left = instance.idle_since + self.spec.keep_alive_s - self.clock()
        if left > 0:
            self._idle_timers[instance.id] = asyncio.get_running_loop().call_later(
                left, self._reap_idle, instance
            )
            return
        running = sum(1 for i in self.instances if i.state is State.READY)
        if scaling.should_stop_idle(
            instance.idle_since,
            self.clock(),
            self.spec.keep_alive_s,
            running,
            self.min_instances,
        ):
            self._spawn(instance.stop())
