"""One running instance, as the pool sees it: a process, its stream, and invocations in flight."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import signal
import time
from collections.abc import Callable
from typing import Any

from mlambda.backends.base import InstanceProcess, close_output
from mlambda.backends.limits import CpuQuota, Guard
from mlambda.errors import ExitError, FunctionError, InitError
from mlambda.pool.channel import read_message, write_message
from mlambda.runtime import protocol

Outcome = protocol.Result | protocol.Failure


class State(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    DEAD = "dead"


def exit_description(status: int) -> str:
    """Lambda's wording: 'exit status 3', or 'signal: killed' for a signal."""
    if status >= 0:
        return f"exit status {status}"
    try:
        name = signal.Signals(-status).name
    except ValueError:
        return f"signal {-status}"
    return "signal: " + {"SIGKILL": "killed", "SIGSEGV": "segmentation fault"}.get(
        name, name.removeprefix("SIG").lower()
    )


def exit_error(request_id: str, status: int, phase: str = "") -> dict[str, Any]:
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": (
            f"RequestId: {request_id} Error: Runtime exited{phase} with error: "
            f"{exit_description(status)}"
        ),
        "requestId": request_id,
    }


class Instance:
    def __init__(
        self,
        instance_id: str,
        process: InstanceProcess,
        on_output: Callable[[str], None],
        now: float,
    ) -> None:
        self.id = instance_id
        self.process = process
        self.state = State.STARTING
        self.started_at = now
        self.created = time.time()
        self.idle_since = now
        self.active = 0
        self.served = 0
        self.exit_status: int | None = None
        self.ready: protocol.Ready | None = None
        self.guard: Guard | None = None  # memory limit, attached by the pool
        self.cpu_quota: CpuQuota | None = None
        self._pending: dict[str, asyncio.Future[Outcome]] = {}
        self._on_output = on_output
        self._tasks = [asyncio.get_running_loop().create_task(self._pump_output())]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def init_ms(self) -> float:
        """What starting this instance cost: fork (if forked) + imports + module init."""
        parts = self.init_parts
        return sum(parts) if parts else 0.0

    @property
    def init_parts(self) -> tuple[float, float, float, float] | None:
        """(prepare, fork, import, init) ms of this instance's start."""
        if self.ready is None:
            return None
        ready = self.ready
        fork = 0.0 if self.process.forked_ahead else ready.fork_ms
        return (self.process.prepare_ms, fork, ready.import_ms, ready.init_ms)

    @property
    def tier(self) -> str:
        return self.ready.tier if self.ready else "process"

    async def configure(self, config: protocol.Configure, timeout: float) -> None:
        """Send the configuration and wait for Ready; raise InitError/ExitError otherwise."""
        write_message(self.process.writer, config)
        try:
            reply = await asyncio.wait_for(read_message(self.process.reader), timeout)
        except TimeoutError:
            self.kill()
            raise InitError(
                {
                    "errorType": "Runtime.InitError",
                    "errorMessage": f"Init timed out after {timeout:.2f} seconds",
                }
            ) from None
        if isinstance(reply, protocol.Ready):
            self.ready = reply
            self.state = State.READY
            self._tasks.append(asyncio.get_running_loop().create_task(self._read_loop()))
            return
        if isinstance(reply, protocol.InitFailed):
            if reply.logs:
                self._on_output(reply.logs)
            status = await self._reap()
            raise InitError(reply.error) from None
        status = await self._reap()
        raise ExitError(exit_error("", status, " during init")) from None

    def invoke(self, request: protocol.Invoke) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        if self.state is not State.READY:
            future.set_exception(ExitError(exit_error(request.request_id, self.exit_status or 0)))
            return future
        self._pending[request.request_id] = future
        write_message(self.process.writer, request)
        return future

    def invoke_all(self, requests: list[protocol.Invoke]) -> list[asyncio.Future[Outcome]]:
        """Send several invocations in one frame (a Batch); one future per request."""
        if len(requests) == 1:
            return [self.invoke(requests[0])]
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Outcome]] = [loop.create_future() for _ in requests]
        if self.state is not State.READY:
            for request, future in zip(requests, futures, strict=True):
                status = self.exit_status or 0
                future.set_exception(ExitError(exit_error(request.request_id, status)))
            return futures
        for request, future in zip(requests, futures, strict=True):
            self._pending[request.request_id] = future
        write_message(self.process.writer, protocol.Batch(items=requests))
        return futures

    async def _read_loop(self) -> None:
        while True:
            message = await read_message(self.process.reader)
            if message is None:
                break
            if isinstance(message, (protocol.Result, protocol.Failure)):
                future = self._pending.pop(message.request_id, None)
                if future is not None and not future.done():
                    future.set_result(message)
        status = await self._reap()
        for request_id, future in self._pending.items():
            if not future.done():
                future.set_exception(ExitError(exit_error(request_id, status)))
        self._pending.clear()

    async def _pump_output(self) -> None:
        output = self.process.output
        if output is None:
            return
        try:
            while line := await output.readline():
                self._on_output(line.decode("utf-8", errors="replace"))
        finally:
            close_output(output)

    async def _reap(self) -> int:
        self.state = State.DEAD
        if self.exit_status is None:
            self.exit_status = await self.process.wait()
            # Whatever the handler started (a subprocess, a daemon) goes with the instance.
            self.process.kill()
        return self.exit_status

    def kill(self) -> None:
        self.process.kill()

    async def wait_dead(self) -> int:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return await self._reap()

    async def stop(self, grace: float = 2.0) -> None:
        """Ask the worker to exit; kill it if it has not within ``grace`` seconds."""
        if self.state is State.DEAD:
            return
        self.state = State.STOPPING
        with contextlib.suppress(ConnectionError, RuntimeError):
            write_message(self.process.writer, protocol.Shutdown())
        try:
            await asyncio.wait_for(self.wait_dead(), grace)
        except TimeoutError:
            self.kill()
            await self.wait_dead()


def out_of_memory(
    instance: Instance, request_id: str, limit: int, phase: str = ""
) -> ExitError | None:
    """The error for an instance that died at its memory limit (None if that was not why)."""
    if instance.guard is None or not instance.guard.exceeded():
        return None
    return ExitError(
        {
            "errorType": "Runtime.OutOfMemory",
            "errorMessage": (
                f"RequestId: {request_id} Error: Runtime exited{phase} with error: signal: killed "
                f"(memory limit of {limit} MB exceeded; raise memory_mb in mlambda.toml)"
            ),
            "requestId": request_id,
        }
    )


__all__ = ["FunctionError", "Instance", "State", "out_of_memory"]
