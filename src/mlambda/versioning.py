"""Versions and aliases as operations: publish, delete a version, set/roll back/delete an alias.
The registry keeps them; this keeps the router's pools and alias cache in step."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlambda.errors import NotFound
from mlambda.observe.metrics import Metrics
from mlambda.registry import FunctionRecord, Registry
from mlambda.registry.model import Alias, Routing
from mlambda.router import Router

if TYPE_CHECKING:
    from mlambda.provisioning import Provisioning


class Versioning:
    def __init__(
        self,
        registry: Registry,
        router: Router,
        collect: Callable[[str], None],
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        *,
        provisioning: Provisioning | None = None,
    ) -> None:
        self.releases = registry.releases
        self.router = router
        # Drops an artifact once nothing refers to it (the Platform's _collect).
        self.collect = collect
        self.metrics = metrics
        self.clock = clock
        # Instances kept for provisioned concurrency follow an alias when it moves.
        self.provisioning = provisioning

    async def _moved(self, name: str, deleted: str | None = None) -> None:
        self.router.forget_aliases(name)
        if self.provisioning is not None:
            await self.provisioning.alias_changed(name, deleted)

    def publish(
        self, name: str, description: str = "", *, code_sha256: str = "", revision: str = ""
    ) -> tuple[FunctionRecord, bool]:
        return self.releases.publish(
            name, description, self.clock(), code_sha256=code_sha256, revision=revision
        )

    def versions(self, name: str) -> list[FunctionRecord]:
        """$LATEST first, then the published versions in order."""
        return [self.router.function(name), *self.releases.versions(name)]

    async def delete_version(self, name: str, version: str) -> FunctionRecord:
        if self.provisioning is not None:
            self.provisioning.check_version_free(name, version)
        record = self.releases.delete_version(name, version)
        await self.router.remove_version(name, version)
        self.metrics.forget(name, version)
        self.collect(record.digest)
        return record

    def aliases(self, name: str) -> list[Alias]:
        self.router.function(name)
        return self.releases.aliases(name)

    def alias(self, name: str, alias: str) -> Alias:
        found = self.releases.alias(name, alias)
        if found is None:
            self.router.function(name)
            raise NotFound(f"Alias not found: {name}:{alias}")
        return found

    async def set_alias(
        self,
        name: str,
        alias: str,
        routing: Routing,
        *,
        description: str | None = None,
        must_exist: bool | None = None,
        revision: str = "",
    ) -> tuple[Alias, bool]:
        try:
            return self.releases.put_alias(
                name,
                alias,
                routing,
                self.clock(),
                description=description,
                must_exist=must_exist,
                revision=revision,
            )
        finally:
            await self._moved(name)

    async def rollback(self, name: str, alias: str) -> Alias:
        try:
            return self.releases.rollback(name, alias, self.clock())
        finally:
            await self._moved(name)

    async def delete_alias(self, name: str, alias: str) -> Alias:
        try:
            return self.releases.delete_alias(name, alias)
        finally:
            await self._moved(name, deleted=alias)
