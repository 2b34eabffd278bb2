"""Router: function name -> the Pool serving its current version (created on first use)."""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Callable
from pathlib import Path

from mlambda.cache import BundleCache
from mlambda.errors import FunctionNotFound
from mlambda.pool.pool import Pool
from mlambda.registry import FunctionRecord, Registry

PoolFactory = Callable[[FunctionRecord, str], Pool]


class Router:
    def __init__(
        self,
        registry: Registry,
        cache: BundleCache,
        make_pool: PoolFactory,
        retire: Callable[[str], None] = lambda digest: None,
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.make_pool = make_pool
        # Called with a replaced version's digest once its pool has drained.
        self.retire = retire
        self.pools: dict[str, Pool] = {}
        self._creating: dict[str, asyncio.Task[Pool]] = {}
        self._draining: set[asyncio.Task[None]] = set()

    async def pool_for(self, name: str) -> Pool:
        pool = self.pools.get(name)
        if pool is not None:
            return pool
        task = self._creating.get(name)
        if task is None:
            task = self._creating[name] = asyncio.get_running_loop().create_task(self._create(name))
            task.add_done_callback(lambda _: self._creating.pop(name, None))
        return await asyncio.shield(task)

    async def _create(self, name: str) -> Pool:
        record = self.registry.get(name)
        if record is None:
            raise FunctionNotFound(not_found_message(name, [r.name for r in self.registry.list()]))
        task_root = await asyncio.to_thread(self.prepare, record.digest)
        pool = self.pools[name] = self.make_pool(record, str(task_root))
        pool.start()
        return pool

    def prepare(self, digest: str) -> Path:
        """The function's unpacked tree, checked against the artifact's manifest (never run
        corrupted or altered code)."""
        return self.cache.prepare(digest)

    async def replace(self, record: FunctionRecord) -> None:
        """A new $LATEST: new requests go to a new pool; the old one drains in the background."""
        old = self.pools.pop(record.name, None)
        if old is not None:
            self._drain(old)
        pool = await self.pool_for(record.name)
        # Just deployed, so likely called soon: build its zygote and template ahead of the call.
        pool.prepare()

    async def remove(self, name: str) -> None:
        pool = self.pools.pop(name, None)
        if pool is not None:
            await pool.close()

    def _drain(self, pool: Pool) -> None:
        async def drain() -> None:
            await pool.drain()
            self.retire(pool.record.digest)

        task = asyncio.get_running_loop().create_task(drain())
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def close(self) -> None:
        for creating in list(self._creating.values()):
            creating.cancel()
        pools = list(self.pools.values())
        self.pools.clear()
        await asyncio.gather(*(pool.close() for pool in pools), return_exceptions=True)
        for task in list(self._draining):
            task.cancel()
        await asyncio.gather(*self._draining, return_exceptions=True)


def not_found_message(name: str, known: list[str]) -> str:
    message = f"Function not found: {name!r}"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"{message} (did you mean {close[0]!r}?)"
    if not known:
        return f"{message}; no function is deployed yet (mlambda deploy DIR)"
    return f"{message}; `mlambda ls` lists the deployed functions"
