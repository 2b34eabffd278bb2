"""Router: name[:qualifier] -> a version (an alias picks by weight) -> the Pool serving that
version (created on first use). Each version has its own pool, instances and template."""

from __future__ import annotations

import asyncio
import difflib
import random
from collections.abc import Callable
from pathlib import Path

from mlambda.cache import BundleCache
from mlambda.errors import FunctionNotFound
from mlambda.pool.pool import Pool
from mlambda.registry import FunctionRecord, Registry
from mlambda.registry.model import LATEST, Alias, is_version, pick
from mlambda.runtime.context import function_arn

PoolFactory = Callable[[FunctionRecord, str], Pool]


class Router:
    def __init__(
        self,
        registry: Registry,
        cache: BundleCache,
        make_pool: PoolFactory,
        retire: Callable[[str], None] = lambda digest: None,
        draw: Callable[[], float] = random.random,
        region: str = "us-east-1",
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.make_pool = make_pool
        # Called with a replaced version's digest once its pool has drained.
        self.retire = retire
        self.draw = draw
        self.region = region  # for the ARN an unknown version or alias is named by
        # Keyed by pool_key: the function's name for $LATEST, NAME:N for version N.
        self.pools: dict[str, Pool] = {}
        self._creating: dict[str, asyncio.Task[Pool]] = {}
        self._draining: set[asyncio.Task[None]] = set()
        # Each function's aliases, read once and dropped when one changes (forget_aliases).
        self._aliases: dict[str, dict[str, Alias]] = {}

    def resolve(self, name: str, qualifier: str = "") -> str:
        """The version a call of ``name`` with ``qualifier`` ("", $LATEST, a version number or
        an alias) runs; an alias with weights picks one per call."""
        if qualifier in ("", LATEST) or is_version(qualifier):
            return qualifier or LATEST
        alias = self.alias(name, qualifier)
        if alias is None:
            self.function(name)  # an unknown function is named as such
            raise FunctionNotFound(
                f"Function not found: {function_arn(name, qualifier, self.region)}"
            )
        return pick(alias.routing, self.draw())

    def main_version(self, name: str, qualifier: str) -> str:
        """The version a qualifier names without a weighted pick (an alias: its main one)."""
        if qualifier in ("", LATEST) or is_version(qualifier):
            return qualifier or LATEST
        alias = self.alias(name, qualifier)
        if alias is None:
            raise FunctionNotFound(
                f"Function not found: {function_arn(name, qualifier, self.region)}"
            )
        return alias.routing.version

    def alias(self, name: str, alias: str) -> Alias | None:
        known = self._aliases.get(name)
        if known is None:
            known = self._aliases[name] = {a.name: a for a in self.registry.releases.aliases(name)}
        return known.get(alias)

    def forget_aliases(self, name: str) -> None:
        self._aliases.pop(name, None)

    def function(self, name: str) -> FunctionRecord:
        record = self.registry.get(name)
        if record is None:
            raise FunctionNotFound(not_found_message(name, [r.name for r in self.registry.list()]))
        return record

    async def pool_for(self, name: str, version: str = LATEST) -> Pool:
        key = pool_key(name, version)
        pool = self.pools.get(key)
        if pool is not None:
            return pool
        task = self._creating.get(key)
        if task is None:
            task = self._creating[key] = asyncio.get_running_loop().create_task(
                self._create(name, version)
            )
            task.add_done_callback(lambda _: self._creating.pop(key, None))
        return await asyncio.shield(task)

    def record(self, name: str, version: str = LATEST) -> FunctionRecord:
        """The record of one version ($LATEST or published); FunctionNotFound if none."""
        if version == LATEST:
            return self.function(name)
        record = self.registry.releases.version(name, version)
        if record is None:
            self.function(name)
            raise FunctionNotFound(
                f"Function not found: {function_arn(name, version, self.region)}"
            )
        return record

    async def _create(self, name: str, version: str) -> Pool:
        record = self.record(name, version)
        task_root = await asyncio.to_thread(self.prepare, record.digest)
        pool = self.pools[pool_key(name, version)] = self.make_pool(record, str(task_root))
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
        """Stop every version's pool of a removed function."""
        self.forget_aliases(name)
        pools = [self.pools.pop(k) for k, p in list(self.pools.items()) if p.record.name == name]
        await asyncio.gather(*(pool.close() for pool in pools), return_exceptions=True)

    async def remove_version(self, name: str, version: str) -> None:
        pool = self.pools.pop(pool_key(name, version), None)
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


def pool_key(name: str, version: str) -> str:
    return name if version == LATEST else f"{name}:{version}"


def not_found_message(name: str, known: list[str]) -> str:
    message = f"Function not found: {name!r}"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"{message} (did you mean {close[0]!r}?)"
    if not known:
        return f"{message}; no function is deployed yet (mlambda deploy DIR)"
    return f"{message}; `mlambda ls` lists the deployed functions"
