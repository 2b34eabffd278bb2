"""A synchronous Invoke that botocore sends again (after its read timeout, or a dropped
connection, with the same ``amz-sdk-invocation-id``) attaches to the first execution while it
runs, or takes its result once it is done, instead of running the function a second time.

A call is known by who sent it (the key), what it named (function and qualifier), its
invocation id and its payload's hash: the same id with another payload is another call. Results
are kept for ``keep_s`` and up to ``max_bytes`` in all (the oldest go first). A call that ended
in a refusal (throttled, not found) is not kept: its retry is tried again."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import time
from collections.abc import Awaitable, Callable

from mlambda.pool.invocation import Invocation

KEEP_S = 15 * 60.0  # botocore's retries come within a few minutes of the first try
MAX_BYTES = 64 * 1024 * 1024
Key = tuple[str, str, str, str, str]


def call_key(key_id: str, name: str, qualifier: str, invocation_id: str, payload: bytes) -> Key:
    return (key_id, name, qualifier, invocation_id, hashlib.sha256(payload).hexdigest())


@dataclasses.dataclass
class _Call:
    task: asyncio.Future[Invocation]
    finished_at: float | None = None
    size: int = 0


class SyncCalls:
    def __init__(
        self,
        keep_s: float = KEEP_S,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keep_s = keep_s
        self.max_bytes = max_bytes
        self.clock = clock
        self._calls: collections.OrderedDict[Key, _Call] = collections.OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._calls)

    async def run(self, key: Key | None, start: Callable[[], Awaitable[Invocation]]) -> Invocation:
        """The invocation for ``key``: started once (``start``), shared by every retry. The
        execution goes on if the caller that started it disconnects."""
        if key is None:
            return await start()
        self._expire()
        call = self._calls.get(key)
        if call is None:
            call = _Call(asyncio.ensure_future(start()))
            self._calls[key] = call
            call.task.add_done_callback(lambda task: self._finished(key, task))
        return await asyncio.shield(call.task)

    def _finished(self, key: Key, task: asyncio.Future[Invocation]) -> None:
        call = self._calls.get(key)
        if call is None or call.task is not task:
            return
        if task.cancelled() or task.exception() is not None:
            del self._calls[key]  # refused or failed before a result: a retry runs again
            return
        call.finished_at = self.clock()
        call.size = len(task.result().body) + 1024
        self._bytes += call.size
        while self._bytes > self.max_bytes and self._drop_oldest_finished():
            pass

    def _drop_oldest_finished(self) -> bool:
        for key, call in self._calls.items():
            if call.finished_at is not None:
                self._forget(key)
                return True
        return False

    def _expire(self) -> None:
        now = self.clock()
        stale = [
            k
            for k, c in self._calls.items()
            if c.finished_at is not None and now - c.finished_at > self.keep_s
        ]
        for key in stale:
            self._forget(key)

    def _forget(self, key: Key) -> None:
        call = self._calls.pop(key)
        self._bytes -= call.size
