"""Dynamic batching, the pool's part of it: the request that gets an instance fills a batch
from the queue (waiting up to max_wait_ms for more) and runs it on its own task; each caller
it carries gets its own answer. A mixin of ``Pool`` (pool.py), which owns the state used here.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlambda.pool.instance import Instance
from mlambda.pool.invocation import Invocation
from mlambda.pool.item import Item
from mlambda.spec import FunctionSpec


class Batching:
    spec: FunctionSpec
    clock: Callable[[], float]
    _queue: collections.deque[Item]
    # Batches a request is still filling (max_wait_ms), and a signal for new arrivals.
    _collecting: list[list[Item]]
    _arrival: asyncio.Event

    if TYPE_CHECKING:  # the pool's own (pool.py)

        async def _run(self, instance: Instance, items: list[Item]) -> list[Invocation]: ...

        def _release(self, instance: Instance) -> None: ...

    async def _run_batch(self, instance: Instance, item: Item) -> Invocation:
        batch = [item]
        try:
            await self._collect(batch)
            item.dequeued(self.clock())  # a batch's first request also waits while it fills
            results = await self._run(instance, batch)
        except BaseException as exc:
            for other in batch[1:]:
                if other.joined.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    other.joined.cancel()
                else:
                    other.joined.set_exception(exc)
            raise
        finally:
            self._release(instance)
        for other, result in zip(batch[1:], results[1:], strict=True):
            if not other.joined.done():
                other.joined.set_result(result)
        return results[0]

    async def _collect(self, batch: list[Item]) -> None:
        """Fill ``batch`` from the queue; with max_wait_ms, wait that long for more."""
        settings = self.spec.batch
        assert settings is not None
        self._take_queued(batch)
        if settings.max_wait_ms <= 0 or len(batch) >= settings.max_size:
            return
        deadline = self.clock() + settings.max_wait_ms / 1000
        self._collecting.append(batch)
        try:
            while len(batch) < settings.max_size and (remaining := deadline - self.clock()) > 0:
                self._arrival.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrival.wait(), remaining)
                self._take_queued(batch)
        finally:
            self._collecting.remove(batch)

    def _take_queued(self, batch: list[Item]) -> None:
        settings = self.spec.batch
        assert settings is not None
        size = sum(len(i.payload) for i in batch)
        now = self.clock()
        while self._queue and len(batch) < settings.max_size:
            item = self._queue[0]
            if item.waiter is None or item.waiter.done():
                self._queue.popleft()
                continue
            if size + len(item.payload) > settings.max_bytes:
                return
            self._queue.popleft()
            item.dequeued(now)
            item.waiter.set_result(None)
            batch.append(item)
            size += len(item.payload)
