"""Router: function name -> the Pool serving its current version (created on first use)."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

from mlambda import bundle
from mlambda.errors import FunctionNotFound, InvalidSpec
from mlambda.pool.pool import Pool
from mlambda.registry import FunctionRecord, Registry
from mlambda.store.base import ArtifactStore

PoolFactory = Callable[[FunctionRecord, str], Pool]


class Router:
    def __init__(
        self, registry: Registry, store: ArtifactStore, cache_dir: Path, make_pool: PoolFactory
    ) -> None:
        self.registry = registry
        self.store = store
        self.cache_dir = Path(cache_dir)
        self.make_pool = make_pool
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

    def task_root(self, digest: str) -> Path:
        return self.cache_dir / digest.replace(":", "-")

    def prepare(self, digest: str) -> Path:
        """Verify the artifact (never run corrupted code) and unpack it once into the cache."""
        archive = self.store.get(digest)
        try:
            return bundle.unpack(archive, self.task_root(digest))
        except (tarfile.TarError, ValueError) as exc:
            raise InvalidSpec(f"bundle cannot be unpacked safely: {exc}") from None

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
        task = asyncio.get_running_loop().create_task(pool.drain())
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    def forget_cache(self, digest: str) -> None:
        root = self.task_root(digest)
        if root.exists():
            for path in [root, *root.rglob("*")]:
                with contextlib.suppress(OSError):
                    path.chmod(0o755 if path.is_dir() else 0o644)
            shutil.rmtree(root, ignore_errors=True)

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
