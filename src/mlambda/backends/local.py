"""Instances as child processes of this machine: ``python -m mlambda.runtime.worker``.

Each instance gets one end of a socketpair (inherited as a file descriptor, so no listening socket
exists that another local user could connect to) and its own session, so that killing its
process group also kills anything the handler started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys

from mlambda.backends.base import InstanceProcess, SharedProcess, StartRequest
from mlambda.backends.limits import Guard
from mlambda.runtime.worker import FD_VARIABLE


class LocalProcess:
    def __init__(
        self,
        process: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._process = process
        self.pid = process.pid
        self.reader = reader
        self.writer = writer
        self.output = process.stdout
        self.prepare_ms = 0.0
        self.guard: Guard | None = None  # the pool attaches limits to a fresh process
        self.forked_ahead = False

    async def wait(self) -> int:
        status = await self._process.wait()
        self.writer.close()
        return status

    def settled(self) -> None:
        pass  # nothing is put off for a fresh process

    def kill(self) -> None:
        # The instance leads its own session: killing the group takes its children along.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)


class LocalBackend:
    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self._processes: set[LocalProcess] = set()

    async def start(self, request: StartRequest) -> InstanceProcess:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {**request.env, FD_VARIABLE: str(theirs.fileno())}
        try:
            process = await asyncio.create_subprocess_exec(
                # -P: the task root (cwd) must not shadow mlambda; the worker adds it itself.
                self.python,
                "-P",
                "-m",
                "mlambda.runtime.worker",
                pass_fds=(theirs.fileno(),),
                cwd=request.task_root,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                # A new session: signals to the platform's terminal do not reach instances, and
                # the instance's process group can be killed as one.
                start_new_session=True,
            )
        finally:
            theirs.close()  # the child holds its own copy now
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        instance = LocalProcess(process, reader, writer)
        self._processes.add(instance)
        asyncio.get_running_loop().create_task(self._forget_when_done(instance))
        return instance

    async def _forget_when_done(self, instance: LocalProcess) -> None:
        with contextlib.suppress(Exception):
            await instance.wait()
        self._processes.discard(instance)

    async def prepare(self, request: StartRequest, template: bool = True) -> None:
        pass  # nothing to build ahead: every instance is a fresh process

    def shared_processes(self) -> list[SharedProcess]:
        return []

    async def release(self, request: StartRequest) -> None:
        pass  # nothing is cached per function: every instance is a fresh process

    async def close(self) -> None:
        for instance in list(self._processes):
            instance.kill()
        for instance in list(self._processes):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(instance.wait(), timeout=5)
        self._processes.clear()
