"""The backend contract: start an instance process connected to the pool by a byte stream.

Invariants:
- ``start`` returns once the process exists and its stream is connected; it does not wait for
  the handler's init (the pool does that over the stream, with its own deadline).
- ``InstanceProcess.kill`` is idempotent and kills everything the instance started (its whole
  process group), so a killed instance leaves nothing behind.
- ``InstanceProcess.wait`` returns the exit status: the exit code, or minus the signal number.
- ``Backend.release`` is idempotent and may be called for a version never started.
- ``Backend.close`` kills every instance still running; no process outlives the platform.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Protocol

from mlambda.backends.limits import Guard
from mlambda.runtime import protocol
from mlambda.spec import FunctionSpec


def close_output(reader: asyncio.StreamReader | None) -> None:
    """Close the channel behind an instance's or zygote's output stream now, rather than when
    the event loop would have read its end (it may be gone by then, leaving it open)."""
    transport = getattr(reader, "_transport", None)
    if transport is not None:
        transport.close()


def _discard(text: str) -> None:
    pass


@dataclasses.dataclass(frozen=True)
class StartRequest:
    instance_id: str
    function_version: str
    spec: FunctionSpec
    task_root: str
    env: dict[str, str]
    max_response_bytes: int = 6 * 1024 * 1024
    # Where output of the function's own processes goes (init output of a template...).
    log: Callable[[str], None] = _discard
    # How the function's processes are confined (None: not at all).
    sandbox: protocol.Sandbox | None = None
    # Threads for this instance's native pools (pool/threads.py; already in ``env``).
    threads: int = 1

    @property
    def fork_template(self) -> bool:
        # A provided runtime's template runs none of its code (each instance starts its own
        # bootstrap): it holds the sandbox and the environment, and never has threads to fear.
        return self.spec.fork_template or self.spec.is_provided


class InstanceProcess(Protocol):
    pid: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    # What the process writes to its stdout/stderr outside of invocations (None if not captured).
    output: asyncio.StreamReader | None
    # Time this start waited for shared state first (a zygote or template built for it), in ms.
    prepare_ms: float
    # A memory limit the backend attached ahead (a pre-forked spare), else None.
    guard: Guard | None
    # True when the process was forked ahead of need: its fork was not on the caller's path.
    forked_ahead: bool

    async def wait(self) -> int: ...

    def kill(self) -> None: ...

    def settled(self) -> None:
        """The instance has answered its first call: work the backend put off so as not to
        compete with that call (forking the next spare) may start now."""


@dataclasses.dataclass(frozen=True)
class SharedProcess:
    """A process a backend keeps for many instances: a zygote or a function template."""

    kind: str  # "zygote" (base), "runtime" or "template"
    name: str  # the preload set of a runtime zygote, the function of a template
    pid: int
    started_at: float  # time.time()
    # A spare's native pool threads, chosen when it was prepared (0: none chosen, or shared).
    threads: int = 0


class Backend(Protocol):
    async def start(self, request: StartRequest) -> InstanceProcess: ...

    async def prepare(self, request: StartRequest, template: bool = True) -> None:
        """Build ahead what ``start`` will need for this version: its zygote, and its template
        when ``template`` is true. Never raises: the next ``start`` meets and reports a failure."""

    def shared_processes(self) -> list[SharedProcess]:
        """Zygotes and templates alive now (none for a backend that keeps none)."""

    async def release(self, request: StartRequest) -> None:
        """No more instances of this function version will be asked for: drop what is cached
        for it (a template). Instances already started are the pool's to stop."""

    async def close(self) -> None: ...
