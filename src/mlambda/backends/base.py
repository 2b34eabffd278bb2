"""The backend contract: start an instance process connected to the pool by a byte stream.

Invariants:
- ``start`` returns once the process exists and its stream is connected; it does not wait for
  the handler's init (the pool does that over the stream, with its own deadline).
- ``InstanceProcess.kill`` is idempotent and kills everything the instance started (its whole
  process group), so a killed instance leaves nothing behind.
- ``InstanceProcess.wait`` returns the exit status: the exit code, or minus the signal number.
- ``Backend.close`` kills every instance still running; no process outlives the platform.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Protocol

from mlambda.spec import FunctionSpec


@dataclasses.dataclass(frozen=True)
class StartRequest:
    instance_id: str
    function_version: str
    spec: FunctionSpec
    task_root: str
    env: dict[str, str]


class InstanceProcess(Protocol):
    pid: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    # What the process writes to its stdout/stderr outside of invocations (None if not captured).
    output: asyncio.StreamReader | None

    async def wait(self) -> int: ...

    def kill(self) -> None: ...


class Backend(Protocol):
    async def start(self, request: StartRequest) -> InstanceProcess: ...

    async def close(self) -> None: ...
