"""Reserved and provisioned concurrency as operations: the registry keeps them; this keeps the
gate (calls running per function) and the pools (instances kept started) in step.

Provisioned concurrency N for a version keeps ceil(N / concurrency) of its instances started
(on top of ``min_instances``); for an alias, the version it routes most calls to. It is READY
once that many instances are up. It cannot be set on $LATEST, as in Lambda."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from mlambda.errors import Conflict, InvalidSpec, NotFound
from mlambda.pool.concurrency import Concurrency
from mlambda.registry.concurrency import ConcurrencySettings, Provisioned
from mlambda.registry.model import LATEST
from mlambda.router import Router, pool_key


class Provisioning:
    def __init__(
        self,
        settings: ConcurrencySettings,
        gate: Concurrency,
        router: Router,
        max_memory_mb: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.router = router
        self.max_memory_mb = max_memory_mb  # what kept instances of one function may use
        self.clock = clock

    # -- reserved ------------------------------------------------------------------------------

    def reserved(self, name: str) -> int | None:
        self.router.function(name)
        return self.gate.reserved.get(name)

    def reserve(self, name: str, reserved: int | None) -> None:
        """Set (None: remove) the function's reserved concurrency."""
        self.router.function(name)
        self.gate.reserve(name, reserved)  # checked against the limit before it is kept
        self.settings.set_reserved(name, reserved, self.clock())

    # -- provisioned ---------------------------------------------------------------------------

    def provisioned(self, name: str, qualifier: str | None = None) -> list[Provisioned]:
        self.router.function(name)
        configs = self.settings.provisioned(name)
        if qualifier is None:
            return configs
        found = [c for c in configs if c.qualifier == qualifier]
        if not found:
            raise NotFound(f"No Provisioned Concurrency Config found for this function: {name}")
        return found

    async def provision(self, name: str, qualifier: str, requested: int | None) -> None:
        """Keep instances started for ``qualifier`` (a version or an alias); None: stop."""
        if qualifier in ("", LATEST):
            raise InvalidSpec("Provisioned Concurrency Configs cannot be applied to $LATEST")
        version = self.router.main_version(name, qualifier)  # NotFound for a missing one
        if requested is not None:
            if requested < 1:
                raise InvalidSpec(
                    f"ProvisionedConcurrentExecutions must be 1 or more, got {requested}"
                )
            spec = self.router.record(name, version).spec
            instances = math.ceil(requested / spec.concurrency)
            if instances > spec.max_instances:
                raise InvalidSpec(
                    f"{requested} provisioned calls need {instances} instances of {name}:{version} "
                    f"(concurrency {spec.concurrency}); max_instances is {spec.max_instances}"
                )
            if instances * spec.memory_mb > self.max_memory_mb:
                raise InvalidSpec(
                    f"{requested} provisioned calls need {instances} instances of {name}:{version} "
                    f"x {spec.memory_mb} MB, more than the platform may use "
                    f"({self.max_memory_mb} MB, --max-memory-mb)"
                )
            reserved = self.gate.reserved.get(name)
            if reserved is not None and requested > reserved:
                raise InvalidSpec(
                    f"Provisioned concurrency ({requested}) is more than {name}'s reserved "
                    f"concurrency ({reserved})"
                )
        elif not any(c.qualifier == qualifier for c in self.settings.provisioned(name)):
            raise NotFound(f"No Provisioned Concurrency Config found for {name}:{qualifier}")
        self.settings.set_provisioned(name, qualifier, requested, self.clock())
        await self.apply(name)

    def check_version_free(self, name: str, version: str) -> None:
        """A version with provisioned concurrency of its own is not deleted under it."""
        if any(c.qualifier == version for c in self.settings.provisioned(name)):
            raise Conflict(
                f"version {version} of {name!r} has provisioned concurrency: delete that first"
            )

    async def apply(self, name: str) -> None:
        """Bring each version's kept instances to what the configs ask now (after a config or
        an alias changed, and at start)."""
        floors: dict[str, int] = {}
        for config in self.settings.provisioned(name):
            try:
                version = self.router.main_version(name, config.qualifier)
                spec = self.router.record(name, version).spec
            except NotFound:
                continue  # an alias deleted since: its config goes with it below
            floors[version] = floors.get(version, 0) + math.ceil(
                config.requested / spec.concurrency
            )
        for key, pool in list(self.router.pools.items()):
            if pool.record.name == name and key not in {pool_key(name, v) for v in floors}:
                pool.provision(0)
        for version, instances in floors.items():
            pool = await self.router.pool_for(name, version)
            pool.provision(min(instances, pool.spec.max_instances))

    def status(self, config: Provisioned) -> dict[str, object]:
        """Requested, allocated (instances started x concurrency) and READY or IN_PROGRESS."""
        try:
            version = self.router.main_version(config.function, config.qualifier)
        except NotFound:
            return {"requested": config.requested, "available": 0, "status": "FAILED"}
        pool = self.router.pools.get(pool_key(config.function, version))
        counts = pool.counts() if pool is not None else {"busy": 0, "idle": 0}
        running = counts["busy"] + counts["idle"]
        concurrency = pool.spec.concurrency if pool is not None else 1
        available = min(config.requested, running * concurrency)
        return {
            "requested": config.requested,
            "available": available,
            "status": "READY" if available >= config.requested else "IN_PROGRESS",
            "version": version,
        }

    async def alias_changed(self, name: str, deleted: str | None = None) -> None:
        """An alias moved (its instances follow) or was deleted (its config goes with it)."""
        if deleted is not None and any(
            c.qualifier == deleted for c in self.settings.provisioned(name)
        ):
            self.settings.set_provisioned(name, deleted, None, self.clock())
        await self.apply(name)

    async def start(self) -> None:
        """At platform start: the instances every stored config asks for."""
        for name in sorted({c.function for c in self.settings.provisioned()}):
            await self.apply(name)

    def forget(self, name: str) -> None:
        self.gate.forget(name)
