"""Instances forked from zygotes: base -> runtime (per preload set) -> template (per function).

The platform holds one control socket per fork server (``ForkServerHandle``). Starting an
instance costs a fork of the function's template, whose handler module is already imported and
whose model is already loaded; the instance shares those pages copy-on-write. A template whose
init left threads running cannot be forked safely: its instances are forked from the runtime
zygote instead and run init themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

import msgspec

from mlambda.backends.base import InstanceProcess, SharedProcess, StartRequest, close_output
from mlambda.backends.eviction import Resident, choose_evictions
from mlambda.backends.forkserver import (
    ForkedProcess,
    ForkServerHandle,
    fork_instance,
    output_reader,
    pump,
    spawn_child,
)
from mlambda.backends.limits import ResourceLimits
from mlambda.backends.spares import Spares, foreground, template_configure
from mlambda.errors import InitError, ServiceUnavailable
from mlambda.observe.memory import memory_kb
from mlambda.runtime import protocol
from mlambda.runtime.zygote import FD_VARIABLE

log = logging.getLogger("mlambda.zygotes")

# The next spare waits for the first answer of the instance that took the last one, at most
# this long (a first call that runs long must not leave a burst without a spare).
REFILL_WITHIN_S = 0.2


class ZygoteBackend(Spares):
    def __init__(
        self,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        budget_mb: int = 4096,
        spares: bool = True,
        limits: ResourceLimits | None = None,
    ) -> None:
        # Keep one instance of each template forked ahead of need.
        self.spares = spares
        # Limits a spare joins ahead, so that taking it costs no cgroup migration.
        self.limits = limits
        self.python = python
        self.env = env or {}
        self.budget_kib = budget_mb * 1024
        self._base: ForkServerHandle | None = None
        self._base_process: asyncio.subprocess.Process | None = None
        self._runtimes: dict[tuple[str, ...], asyncio.Task[ForkServerHandle]] = {}
        self._templates: dict[bytes, asyncio.Task[ForkServerHandle | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._instances: set[ForkedProcess] = set()
        self._lock = asyncio.Lock()

    async def _base_zygote(self) -> ForkServerHandle:
        async with self._lock:
            if self._base is not None and not self._base.closed:
                return self._base
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                self._base_process = await asyncio.create_subprocess_exec(
                    self.python,
                    "-P",
                    "-m",
                    "mlambda.runtime.zygote",
                    pass_fds=(theirs.fileno(),),
                    env={**self.env, FD_VARIABLE: str(theirs.fileno())},
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                theirs.close()
            assert self._base_process.stdout is not None
            self._keep(pump(self._base_process.stdout, lambda t: log.warning("zygote: %s", t)))
            handle = ForkServerHandle(ours, self._base_process.pid, "base")
            ready = await handle.next_message()
            if not isinstance(ready, protocol.ZygoteReady):
                raise ServiceUnavailable(f"the base zygote did not start: {ready}")
            handle.name = "-"
            self._base = handle
            return handle

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fork_server(
        self,
        parent: ForkServerHandle,
        spawn: protocol.Spawn,
        name: str,
        sink: Callable[[str], None],
        kind: str,
        timeout: float,
        configure: protocol.Configure | None = None,
    ) -> tuple[ForkServerHandle, protocol.Message]:
        spawned, ours, output = await spawn_child(parent, spawn, socket.SOCK_SEQPACKET)
        self._keep(pump(await output_reader(output), sink))
        handle = ForkServerHandle(ours, spawned.pid, name, kind)
        handle.parent = parent
        parent.live += 1
        try:
            if configure is not None:
                await self._contain(handle, configure.memory_mb)
                handle.send(configure)  # the template starts its init (the function's code)
            ready = await asyncio.wait_for(handle.next_message(), timeout)
        except ConnectionError:
            status = await parent.exit_future(spawned.pid)
            if handle.guard is not None and handle.guard.exceeded():
                raise InitError(_out_of_memory_during_init(configure)) from None
            raise ServiceUnavailable(f"{name} exited while starting (status {status})") from None
        except TimeoutError:
            # Init hangs (a stuck import, a model load waiting on the network): kill, report.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(spawned.pid, signal.SIGKILL)
            handle.close()
            raise InitError(
                {
                    "errorType": "Runtime.InitError",
                    "errorMessage": f"Init timed out after {timeout:.2f} seconds",
                }
            ) from None
        except BaseException:
            handle.close()  # cancelled (the platform stops): the child exits on EOF
            raise
        return handle, ready

    async def _contain(self, handle: ForkServerHandle, memory_mb: int) -> None:
        """A template's own limits (memory, processes), before its init runs: whatever init
        starts stays in them and is killed when the template goes."""
        if self.limits is not None:
            handle.guard = await asyncio.to_thread(
                self.limits.attach, handle.pid, memory_mb, f"template-{handle.pid}"
            )

    async def _runtime(self, preload: list[str], timeout: float) -> ForkServerHandle:
        if not preload:
            return await self._base_zygote()  # nothing to import: the base zygote serves
        key = tuple(preload)
        task = self._runtimes.get(key)
        if task is None or (task.done() and (task.exception() or task.result().closed)):
            task = self._runtimes[key] = asyncio.get_running_loop().create_task(
                self._start_runtime(preload, timeout)
            )
        return await asyncio.shield(task)

    async def _start_runtime(self, preload: list[str], timeout: float) -> ForkServerHandle:
        base = await self._base_zygote()
        name = ",".join(preload) or "-"
        handle, ready = await self._fork_server(
            base,
            protocol.Spawn(kind="zygote", preload=preload),
            name,
            lambda t: log.warning("runtime zygote [%s]: %s", name, t.rstrip()),
            "runtime",
            timeout,
        )
        if isinstance(ready, protocol.InitFailed):
            handle.close()
            raise InitError(ready.error)
        self._enforce_budget(keep=handle)
        return handle

    async def _template(self, request: StartRequest) -> ForkServerHandle | None:
        key = _template_key(request)
        task = self._templates.get(key)
        if task is None or (task.done() and (task.exception() or _closed(task.result()))):
            task = self._templates[key] = asyncio.get_running_loop().create_task(
                self._start_template(request)
            )
        try:
            return await asyncio.shield(task)
        except BaseException:
            self._templates.pop(key, None)  # a failed init is retried by the next start
            raise

    async def _start_template(self, request: StartRequest) -> ForkServerHandle | None:
        runtime = await self._runtime(request.spec.modules_to_preload, request.spec.init_timeout_s)
        config = template_configure(request)
        handle, ready = await self._fork_server(
            runtime,
            protocol.Spawn(kind="template"),
            request.spec.name,
            request.log,
            "template",
            request.spec.init_timeout_s,
            configure=config,
        )
        if isinstance(ready, protocol.InitFailed):
            handle.close()
            raise InitError(ready.error)
        assert isinstance(ready, protocol.TemplateReady)
        if ready.primed:
            request.log(
                f"mlambda: primed the template of {request.spec.name} with {ready.primed} "
                f"in {ready.prime_ms:.2f} ms\n"
            )
        if ready.unforkable:
            handle.close()
            request.log(
                f"mlambda: not forking instances of {request.spec.name} from a template: "
                f"{ready.unforkable}; each instance runs init itself\n"
            )
            return None
        self._enforce_budget(keep=handle)
        self._arm_expiry(handle, request.spec.template_keep_alive_s)
        self._refill(handle, request)
        return handle

    def _arm_expiry(self, handle: ForkServerHandle, ttl: float) -> None:
        """A template with no instance is evicted after its own keep-alive."""
        if handle.expiry is not None:
            handle.expiry.cancel()
        handle.expiry = asyncio.get_running_loop().call_later(ttl, self._expire, handle, ttl)

    def _expire(self, handle: ForkServerHandle, ttl: float) -> None:
        handle.expiry = None
        if handle.closed or handle.live > 0:
            return  # in use: its last instance's exit arms the timer again
        if handle.starting > 0:
            # A fork is in flight (a spare being made): look again rather than never.
            handle.expiry = asyncio.get_running_loop().call_later(
                min(ttl, 1.0), self._expire, handle, ttl
            )
            return
        self._evict(handle)

    def _residents(self) -> dict[int, ForkServerHandle]:
        found: dict[int, ForkServerHandle] = {}
        for task in [*self._runtimes.values(), *self._templates.values()]:
            handle = _result(task)
            if handle is not None and not handle.closed:
                found[id(handle)] = handle
        return found

    def _enforce_budget(self, keep: ForkServerHandle) -> None:
        """Evict idle zygotes and templates, least recently used first, past the budget."""
        residents = self._residents()
        chosen = choose_evictions(
            [
                Resident(
                    key,
                    memory_kb(h.pid)[1],
                    h.last_used,
                    evictable=h is not keep and h.live == 0 and h.starting == 0,
                )
                for key, h in residents.items()
            ],
            self.budget_kib,
        )
        for key in chosen:
            log.info(
                "evicting %s %s: zygote memory budget reached",
                residents[key].kind,
                residents[key].name,
            )
            self._evict(residents[key])

    def _evict(self, handle: ForkServerHandle) -> None:
        for key in [k for k, task in self._runtimes.items() if _result(task) is handle]:
            del self._runtimes[key]
        for template in [k for k, task in self._templates.items() if _result(task) is handle]:
            del self._templates[template]
        handle.close()  # the server exits: nothing depends on it

    async def start(self, request: StartRequest) -> InstanceProcess:
        started = time.perf_counter()
        server = await self._template(request) if request.fork_template else None
        if server is None:
            server = await self._runtime(
                request.spec.modules_to_preload, request.spec.init_timeout_s
            )
        prepare_ms = (time.perf_counter() - started) * 1000
        if server.expiry is not None:
            server.expiry.cancel()
            server.expiry = None
        process = server.spare
        if process is not None:
            server.spare = None  # forked ahead: this start costs a dispatch, not a fork
            process.forked_ahead = True
            foreground(process.pid)
            # The next spare is forked once this one answered its first call: a fork (and
            # the new spare's preparing) on the same cores would slow that call down.
            process.when_settled(lambda: self._refill(server, request), REFILL_WITHIN_S)
        else:
            process = await fork_instance(server)
        server.live += 1
        server.last_used = time.monotonic()
        # A template or zygote built for this start is part of what its first caller waited.
        process.prepare_ms = prepare_ms if prepare_ms >= 1.0 else 0.0
        self._instances.add(process)
        ttl = request.spec.template_keep_alive_s
        process.exited.add_done_callback(lambda _: self._instance_exited(process, server, ttl))
        if server.kind == "template" and not process.forked_ahead:
            self._refill(server, request)  # a burst: forks are on the call's path already
        return process

    def _instance_exited(
        self, process: ForkedProcess, server: ForkServerHandle, ttl: float
    ) -> None:
        self._instances.discard(process)
        server.live -= 1
        server.last_used = time.monotonic()
        if server.kind == "template" and server.live == 0 and not server.closed:
            self._arm_expiry(server, ttl)
            self._resize_spare(server)

    async def prepare(self, request: StartRequest, template: bool = True) -> None:
        try:
            if template and request.fork_template:
                await self._template(request)
            else:
                await self._runtime(request.spec.modules_to_preload, request.spec.init_timeout_s)
        except Exception as exc:  # the next start meets the same failure and reports it
            log.debug("preparing %s failed: %s", request.spec.name, exc)

    def shared_processes(self) -> list[SharedProcess]:
        handles = [h for h in [self._base, *self._residents().values()] if h and not h.closed]
        shared = [SharedProcess(h.kind, h.name, h.pid, h.started_at) for h in handles]
        for h in handles:
            if h.spare is not None:
                spare = h.spare
                shared.append(
                    SharedProcess("spare", h.name, spare.pid, spare.started_at, spare.threads)
                )
        return shared

    async def release(self, request: StartRequest) -> None:
        """The function version is gone: drop its template (its instances stop with it)."""
        task = self._templates.pop(_template_key(request), None)
        if task is None:
            return
        if not task.done():
            task.cancel()  # still being built: its handle closes as it unwinds
            return
        handle = _result(task)
        if handle is not None:
            handle.close()  # settles its children's exits: a waiting spare is discarded

    async def close(self) -> None:
        residents = list(self._residents().values())
        for instance in list(self._instances):
            instance.kill()
            instance.writer.close()
            close_output(instance.output)
        self._instances.clear()
        for task in [*self._templates.values(), *self._runtimes.values()]:
            task.cancel()  # one still starting closes its handle as it unwinds
        for handle in residents:
            handle.close()  # settles its children's exits: a waiting spare is discarded
        if self._base is not None:
            self._base.close()
        if self._base_process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._base_process.pid, signal.SIGKILL)
            await self._base_process.wait()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _result(
    task: asyncio.Task[ForkServerHandle] | asyncio.Task[ForkServerHandle | None],
) -> ForkServerHandle | None:
    """The handle a finished start produced, or None (running, failed, or no template)."""
    if task.done() and not task.cancelled() and task.exception() is None:
        return task.result()
    return None


def _closed(handle: ForkServerHandle | None) -> bool:
    return handle is not None and handle.closed


def _template_key(request: StartRequest) -> bytes:
    # Per version: a template's instances report the version they serve.
    head = f"{request.task_root}\0{request.function_version}\0".encode()
    return head + msgspec.json.encode(request.spec)


def _out_of_memory_during_init(configure: protocol.Configure | None) -> dict[str, str]:
    limit = configure.memory_mb if configure is not None else 0
    return {
        "errorType": "Runtime.OutOfMemory",
        "errorMessage": (
            "Error: Runtime exited during init with error: signal: killed "
            f"(memory limit of {limit} MB exceeded; raise memory_mb in mlambda.toml)"
        ),
    }
