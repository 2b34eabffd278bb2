"""The platform's side of fork servers: a control-socket handle per zygote or template, and
the instances they fork (``InstanceProcess``)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable

from mlambda.backends.base import StartRequest, close_output
from mlambda.backends.limits import Guard
from mlambda.runtime import protocol
from mlambda.runtime.zygote import MAX_PACKET


class ForkServerHandle:
    """The platform's end of one fork server's control socket."""

    def __init__(self, sock: socket.socket, pid: int, name: str, kind: str = "zygote") -> None:
        self.sock = sock
        self.pid = pid
        self.name = name
        self.kind = kind
        self.started_at = time.time()
        # Bookkeeping for eviction: what depends on this server, and when it was last used.
        self.parent: ForkServerHandle | None = None
        self.live = 0  # children alive: instances, or templates of a runtime zygote
        self.starting = 0  # starts in progress that will fork from it
        self.last_used = time.monotonic()
        self.expiry: asyncio.TimerHandle | None = None
        # A template's instance forked ahead of need, waiting for its Configure.
        self.spare: ForkedProcess | None = None
        self.spare_pending = False
        # What the spare was made for: a spare sized beside busy instances is made again, with
        # more threads, once the template has none left.
        self.spare_request: StartRequest | None = None
        # A template's own limits: released (what init left running is killed) on close.
        self.guard: Guard | None = None
        self.closed = False
        self._replies: collections.deque[asyncio.Future[protocol.Message]] = collections.deque()
        self._unclaimed: collections.deque[protocol.Message] = collections.deque()
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
        try:
            message = protocol.decode(data)
        except protocol.ProtocolError:
            self._lost()  # not our protocol: the server is broken (or not ours): drop it
            return
        if isinstance(message, protocol.Exited):
            self.exit_future(message.pid).set_result(message.status)
        elif self._replies:
            self._replies.popleft().set_result(message)
        else:  # read before anyone asked for it (uvloop may run I/O before a new task)
            self._unclaimed.append(message)

    def _lost(self) -> None:
        """The server died: its children died with it (parent-death signal)."""
        self.close()

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
        if self._unclaimed:
            return self._unclaimed.popleft()
        future: asyncio.Future[protocol.Message] = asyncio.get_running_loop().create_future()
        self._replies.append(future)
        return await future

    def send(self, message: protocol.Message) -> None:
        if self.closed:
            raise ConnectionError(f"{self.name} exited")
        self.sock.send(protocol.encode_packet(message))

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
        if self.expiry is not None:
            self.expiry.cancel()
        if self.parent is not None:
            self.parent.live -= 1
            self.parent.last_used = time.monotonic()
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        if self.guard is not None:
            self.guard.release()
        # The server exits once its socket closes, and its children die with it (parent-death
        # signal); no more exit reports will come, so settle every wait now.
        for future in self._exits.values():
            if not future.done():
                future.set_result(-signal.SIGKILL)
        while self._replies:
            reply = self._replies.popleft()
            if not reply.done():
                reply.set_exception(ConnectionError(f"{self.name} exited"))


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
        self.exited = exited
        self.prepare_ms = 0.0
        self.started_at = time.time()
        self.guard: Guard | None = None
        self.forked_ahead = False
        # A spare's native pool threads, chosen when it was prepared (0: not prepared).
        self.threads = 0
        # What waits for its first answer (settled()): the next spare of its template.
        self._on_settled: list[Callable[[], None]] = []
        self._settle_timer: asyncio.TimerHandle | None = None

    def when_settled(self, action: Callable[[], None], at_most_s: float) -> None:
        """Run ``action`` once this instance answered its first call, or after ``at_most_s``
        (a first call that takes long, or never comes), whichever is first."""
        self._on_settled.append(action)
        self._settle_timer = asyncio.get_running_loop().call_later(at_most_s, self.settled)

    def settled(self) -> None:
        if self._settle_timer is not None:
            self._settle_timer.cancel()
            self._settle_timer = None
        actions, self._on_settled = self._on_settled, []
        for action in actions:
            action()

    async def wait(self) -> int:
        status = await asyncio.shield(self.exited)
        self.writer.close()
        return status

    def kill(self) -> None:
        # The instance leads its own session (setsid after fork): its group holds all it started.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def discard(self) -> None:
        """Drop an instance no pool took (a spare): kill it, close its stream and its limit."""
        self.kill()
        self.writer.close()
        close_output(self.output)
        if self.guard is not None:
            self.guard.release()


async def spawn_child(
    server: ForkServerHandle, message: protocol.Spawn, kind: socket.SocketKind
) -> tuple[protocol.Spawned, socket.socket, socket.socket]:
    """Have ``server`` fork a child connected to us by a socket of ``kind``, its stdout and
    stderr on an output channel: (its Spawned, our end of the socket, our end of its output).
    A socket pair carries the output, not a pipe: uvloop's pipe transport closes its
    descriptor twice (MagicStack/uvloop#763), which would close whatever took that number in
    between (an instance's stream, a fork server's socket, a client's connection)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, kind)
    output, their_output = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        spawned = await server.spawn(message, (theirs.fileno(), their_output.fileno()))
    except BaseException:
        ours.close()  # no child holds the other ends: nothing will use these
        output.close()
        raise
    finally:
        theirs.close()
        their_output.close()
    return spawned, ours, output


async def fork_instance(server: ForkServerHandle) -> ForkedProcess:
    """Have ``server`` (a zygote or template) fork an instance; its stream and output."""
    server.starting += 1  # no await since it was chosen: eviction cannot take it first
    try:
        spawned, ours, output = await spawn_child(
            server, protocol.Spawn(kind="instance"), socket.SOCK_STREAM
        )
    finally:
        server.starting -= 1
    exited = server.exit_future(spawned.pid)
    try:
        stdout = await output_reader(output)
    except BaseException:  # cancelled as the platform closes, say: nothing may leak
        ours.close()
        output.close()
        raise
    try:
        reader, writer = await asyncio.open_unix_connection(sock=ours)
    except BaseException:
        ours.close()
        close_output(stdout)
        raise
    return ForkedProcess(spawned.pid, reader, writer, stdout, exited)


async def output_reader(sock: socket.socket) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().create_unix_connection(
        lambda: asyncio.StreamReaderProtocol(reader), sock=sock
    )
    return reader


def pump(reader: asyncio.StreamReader, sink: Callable[[str], None]) -> asyncio.Task[None]:
    async def pump() -> None:
        try:
            while line := await reader.readline():
                sink(line.decode("utf-8", errors="replace"))
        finally:
            close_output(reader)

    return asyncio.get_running_loop().create_task(pump())
