"""Instances forked from zygotes: base -> runtime (per preload set) -> template (per function).

The platform holds one control socket per fork server (``ForkServerHandle``). Starting an
instance costs a fork of the function's template, whose handler module is already imported and
whose model is already loaded; the instance shares those pages copy-on-write. A template whose
init left threads running cannot be forked safely: its instances are forked from the runtime
zygote instead and run init themselves.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

import msgspec

from mlambda.backends.base import InstanceProcess, SharedProcess, StartRequest
from mlambda.errors import InitError, ServiceUnavailable
from mlambda.runtime import protocol
from mlambda.runtime.zygote import FD_VARIABLE, MAX_PACKET

log = logging.getLogger("mlambda.zygotes")


class ForkServerHandle:
    """The platform's end of one fork server's control socket."""

    def __init__(self, sock: socket.socket, pid: int, name: str, kind: str = "zygote") -> None:
        self.sock = sock
        self.pid = pid
        self.name = name
        self.kind = kind
        self.started_at = time.time()
        self.closed = False
        self._replies: collections.deque[asyncio.Future[protocol.Message]] = collections.deque()
        self._exits: dict[int, asyncio.Future[int]] = {}
        sock.setblocking(False)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            data = self.sock.recv(MAX_PACKET)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._lost()
            return
        message = protocol.decode(data)
        if isinstance(message, protocol.Exited):
            self.exit_future(message.pid).set_result(message.status)
        elif self._replies:
            self._replies.popleft().set_result(message)

    def _lost(self) -> None:
        """The server died: its children died with it (parent-death signal)."""
        self.close()
        for future in self._exits.values():
            if not future.done():
                future.set_result(-signal.SIGKILL)
        while self._replies:
            reply = self._replies.popleft()
            if not reply.done():
                reply.set_exception(ConnectionError(f"{self.name} exited"))

    def exit_future(self, pid: int) -> asyncio.Future[int]:
        future = self._exits.get(pid)
        if future is None:
            future = self._exits[pid] = asyncio.get_running_loop().create_future()
            if self.closed:
                future.set_result(-signal.SIGKILL)
        return future

    async def next_message(self) -> protocol.Message:
        """The next packet that is not an exit report (a Ready after a spawn)."""
        if self.closed:
            raise ConnectionError(f"{self.name} exited")
        future: asyncio.Future[protocol.Message] = asyncio.get_running_loop().create_future()
        self._replies.append(future)
        return await future

    async def spawn(self, message: protocol.Spawn, fds: tuple[int, int]) -> protocol.Spawned:
        if self.closed:
            raise ConnectionError(f"{self.name} exited")
        future: asyncio.Future[protocol.Message] = asyncio.get_running_loop().create_future()
        self._replies.append(future)
        socket.send_fds(self.sock, [protocol.encode_packet(message)], list(fds))
        reply = await future
        if not isinstance(reply, protocol.Spawned):
            raise ConnectionError(f"{self.name} answered {type(reply).__name__} to Spawn")
        return reply

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


class ForkedProcess:
    """An instance forked by a fork server (InstanceProcess)."""

    def __init__(
        self,
        pid: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        output: asyncio.StreamReader,
        exited: asyncio.Future[int],
    ) -> None:
        self.pid = pid
        self.reader = reader
        self.writer = writer
        self.output: asyncio.StreamReader | None = output
        self._exited = exited
        self.prepare_ms = 0.0

    async def wait(self) -> int:
        status = await asyncio.shield(self._exited)
        self.writer.close()
        return status

    def kill(self) -> None:
        # The instance leads its own session (setsid after fork): its group holds all it started.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)


async def _pipe_reader(read_fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
    )
    return reader


def _pump(reader: asyncio.StreamReader, sink: Callable[[str], None]) -> asyncio.Task[None]:
    async def pump() -> None:
        while line := await reader.readline():
            sink(line.decode("utf-8", errors="replace"))

    return asyncio.get_running_loop().create_task(pump())


class ZygoteBackend:
    def __init__(self, python: str = sys.executable, env: dict[str, str] | None = None) -> None:
        self.python = python
        self.env = env or {}
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
            self._keep(_pump(self._base_process.stdout, lambda t: log.warning("zygote: %s", t)))
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
    ) -> tuple[ForkServerHandle, protocol.Message]:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        read_fd, write_fd = os.pipe()
        try:
            spawned = await parent.spawn(spawn, (theirs.fileno(), write_fd))
        finally:
            theirs.close()
            os.close(write_fd)
        self._keep(_pump(await _pipe_reader(read_fd), sink))
        handle = ForkServerHandle(ours, spawned.pid, name, kind)
        try:
            ready = await handle.next_message()
        except ConnectionError:
            status = await parent.exit_future(spawned.pid)
            raise ServiceUnavailable(f"{name} exited while starting (status {status})") from None
        return handle, ready

    async def _runtime(self, preload: list[str]) -> ForkServerHandle:
        key = tuple(preload)
        task = self._runtimes.get(key)
        if task is None or (task.done() and (task.exception() or task.result().closed)):
            task = self._runtimes[key] = asyncio.get_running_loop().create_task(
                self._start_runtime(preload)
            )
        return await asyncio.shield(task)

    async def _start_runtime(self, preload: list[str]) -> ForkServerHandle:
        base = await self._base_zygote()
        name = ",".join(preload) or "-"
        handle, ready = await self._fork_server(
            base,
            protocol.Spawn(kind="zygote", preload=preload),
            name,
            lambda t: log.warning("runtime zygote [%s]: %s", name, t.rstrip()),
            "runtime",
        )
        if isinstance(ready, protocol.InitFailed):
            handle.close()
            raise InitError(ready.error)
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
        runtime = await self._runtime(list(request.spec.preload))
        config = _configure(request)
        handle, ready = await self._fork_server(
            runtime,
            protocol.Spawn(kind="template", config=config),
            request.spec.name,
            request.log,
            "template",
        )
        if isinstance(ready, protocol.InitFailed):
            handle.close()
            raise InitError(ready.error)
        assert isinstance(ready, protocol.TemplateReady)
        if ready.unforkable:
            handle.close()
            request.log(
                f"mlambda: not forking instances of {request.spec.name} from a template: "
                f"{ready.unforkable}; each instance runs init itself\n"
            )
            return None
        return handle

    async def start(self, request: StartRequest) -> InstanceProcess:
        started = time.perf_counter()
        server = await self._template(request) if request.fork_template else None
        if server is None:
            server = await self._runtime(list(request.spec.preload))
        prepare_ms = (time.perf_counter() - started) * 1000
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        read_fd, write_fd = os.pipe()
        try:
            spawned = await server.spawn(
                protocol.Spawn(kind="instance"), (theirs.fileno(), write_fd)
            )
        finally:
            theirs.close()
            os.close(write_fd)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        output = await _pipe_reader(read_fd)
        exited = server.exit_future(spawned.pid)
        process = ForkedProcess(spawned.pid, reader, writer, output, exited)
        # A template or zygote built for this start is part of what its first caller waited.
        process.prepare_ms = prepare_ms if prepare_ms >= 1.0 else 0.0
        self._instances.add(process)
        exited.add_done_callback(lambda _: self._instances.discard(process))
        return process

    async def prepare(self, request: StartRequest) -> None:
        try:
            if request.fork_template:
                await self._template(request)
            else:
                await self._runtime(list(request.spec.preload))
        except Exception as exc:  # the next start meets the same failure and reports it
            log.debug("preparing %s failed: %s", request.spec.name, exc)

    def shared_processes(self) -> list[SharedProcess]:
        handles: list[ForkServerHandle | None] = [self._base]
        for task in [*self._runtimes.values(), *self._templates.values()]:
            if task.done() and not task.cancelled() and task.exception() is None:
                handles.append(task.result())
        return [
            SharedProcess(h.kind, h.name, h.pid, h.started_at)
            for h in handles
            if h is not None and not h.closed
        ]

    async def release(self, request: StartRequest) -> None:
        """The function version is gone: drop its template (its instances stop with it)."""
        task = self._templates.pop(_template_key(request), None)
        if task is not None and task.done() and not task.exception():
            handle = task.result()
            if handle is not None:
                handle.close()

    async def close(self) -> None:
        for instance in list(self._instances):
            instance.kill()
            instance.writer.close()
        self._instances.clear()
        for task in self._templates.values():
            task.cancel()
            if task.done() and not task.cancelled() and not task.exception() and task.result():
                task.result().close()  # type: ignore[union-attr]
        for runtime in self._runtimes.values():
            runtime.cancel()
            if runtime.done() and not runtime.cancelled() and not runtime.exception():
                runtime.result().close()
        if self._base is not None:
            self._base.close()
        if self._base_process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._base_process.pid, signal.SIGKILL)
            await self._base_process.wait()
        for pump in list(self._tasks):
            pump.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _closed(handle: ForkServerHandle | None) -> bool:
    return handle is not None and handle.closed


def _template_key(request: StartRequest) -> bytes:
    return request.task_root.encode() + b"\0" + msgspec.json.encode(request.spec)


def _configure(request: StartRequest) -> protocol.Configure:
    return protocol.Configure(
        instance_id="template",
        function_name=request.spec.name,
        function_version=request.function_version,
        handler=request.spec.handler,
        task_root=request.task_root,
        memory_mb=request.spec.memory_mb,
        concurrency=request.spec.concurrency,
        max_response_bytes=request.max_response_bytes,
        preload=[],
        env=request.env,
    )
