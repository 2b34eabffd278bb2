"""Platform: builds and wires every part; ``start()``/``stop()``. Holds all live state."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from pathlib import Path

from mlambda import bundle, unpacking
from mlambda.backends.base import Backend
from mlambda.backends.choice import make_backend
from mlambda.backends.limits import ResourceLimits
from mlambda.backends.sandbox import Sandboxing, make_sandboxing
from mlambda.cache import BundleCache
from mlambda.datadir import load_or_create_key, secure_data_dir
from mlambda.errors import (
    ArtifactCorrupted,
    FunctionNotFound,
    InvalidRequest,
    InvalidSpec,
    ServiceUnavailable,
    Throttled,
)
from mlambda.events.asyncinvoke import AsyncInvoker
from mlambda.events.backends import open_queue
from mlambda.events.configs import AsyncConfigs
from mlambda.events.job_runner import JobRunner
from mlambda.events.jobs import JobStore
from mlambda.events.queue_names import QueueNames
from mlambda.events.queues import PlatformQueues
from mlambda.events.triggers.config import TriggerSpec
from mlambda.events.triggers.manager import Triggers
from mlambda.events.triggers.store import TriggerStore
from mlambda.handler_check import check_handler_defined, check_runtime_installed
from mlambda.observe.observability import Observability
from mlambda.pool import capacity
from mlambda.pool.capacity import Capacity, machine_memory_mb
from mlambda.pool.concurrency import Concurrency
from mlambda.pool.invocation import Invocation
from mlambda.pool.pool import Pool
from mlambda.provisioning import Provisioning
from mlambda.registry import FunctionRecord, Registry
from mlambda.registry.model import LATEST, is_unchanged
from mlambda.router import Router, not_found_message, pool_key
from mlambda.runtime.trace_header import TraceContext
from mlambda.security.audit import AuditLog
from mlambda.security.crypto import MasterKeyError
from mlambda.security.keys import KeyStore
from mlambda.security.ratelimit import FailureCounter, MemoryLimiter, RedisLimiter, function_rate
from mlambda.security.vault import open_vault
from mlambda.settings import Settings
from mlambda.spec import SPEC_FILE, FunctionSpec, parse_spec, triggers_of
from mlambda.store import LocalStore
from mlambda.store.base import ArtifactStore, digest_of
from mlambda.urlconfig import UrlSpec
from mlambda.versioning import Versioning

log = logging.getLogger("mlambda")


class Platform:
    def __init__(
        self,
        settings: Settings,
        *,
        backend: Backend | None = None,
        store: ArtifactStore | None = None,
        limits: ResourceLimits | None = None,
        sandboxing: Sandboxing | None = None,
    ) -> None:
        self.settings = settings
        # Absolute: instances get paths under it and run with another working directory.
        data = self.data_dir = Path(settings.data_dir).resolve()
        # What the platform writes from now on is its own to read (the keys, the registry...).
        os.umask(0o077)
        data.mkdir(parents=True, exist_ok=True)
        self.api_key = load_or_create_key(settings.key_file) if settings.auth else None
        self.registry = Registry.sqlite(data / "registry.db")
        self.vault = open_vault(settings)
        self.store = store or LocalStore(data / "artifacts", self.vault.envelope)
        self.keys = KeyStore(self.registry.engine, self.vault.envelope)
        self.audit = AuditLog(self.registry.engine, head_file=data / "audit.head")
        self.limiter = RedisLimiter(settings.redis_url) if settings.redis_url else MemoryLimiter()
        self.auth_failures = FailureCounter()
        self.capacity = Capacity(settings.max_instances_total)
        self.max_memory_mb = settings.max_memory_mb or machine_memory_mb()
        # Given when made first (serve starts its zygotes and the sandbox probe early).
        self.limits = limits or ResourceLimits(
            settings.memory_limits, pids_max=settings.instance_pids_max
        )
        self.sandboxing = sandboxing or make_sandboxing(settings, data, self.limits)
        secure_data_dir(data, traversable=self.sandboxing.needs_traversal)
        self.backend = backend or make_backend(settings, self.limits)
        # Metrics, logs, usage, the metric history and alarms (observe/).
        self.observability = seen = Observability(
            settings, self.registry.engine, self.vault.envelope, data / "logs", self._alarm_event
        )
        self.metrics, self.logs, self.usage = seen.metrics, seen.logs, seen.usage
        self.observer = seen.observer
        self.unpack_limits = unpacking.Limits(
            settings.max_unpacked_bytes, settings.max_bundle_files, settings.max_bundle_ratio
        )
        cache = BundleCache(data / "cache", self.store, self.unpack_limits)
        self.router = Router(
            self.registry, cache, self._make_pool, retire=self._collect, region=settings.region
        )
        # Reserved concurrency (calls at once per function, within --concurrency-limit) and
        # provisioned concurrency (instances kept started per version or alias).
        self.concurrency = Concurrency(
            settings.concurrency_limit, self.registry.concurrency.reserved()
        )
        self.provisioning = Provisioning(
            self.registry.concurrency, self.concurrency, self.router, self.max_memory_mb
        )
        self.versions = Versioning(
            self.registry,
            self.router,
            self._collect,
            self.metrics,
            provisioning=self.provisioning,
        )
        # Asynchronous invocations: the durable queue and its dispatcher (events/).
        self.async_configs = AsyncConfigs(self.registry, self.current)
        consumer = f"{socket.gethostname()}:{data}"
        self.queue_names = QueueNames(self.registry.engine)
        self.queues = PlatformQueues(
            open_queue(settings.queue_url, data, consumer, namespace="queues")
        )
        self.async_invoker = AsyncInvoker(
            open_queue(settings.queue_url, data, consumer),
            self.invoke,
            self.current,
            self.async_configs.config,
            max_in_flight=settings.max_instances_total,
            region=settings.region,
            send=self.queues.send,
            on_dead=seen.dead_letter,
            tracing=seen.tracing,
        )
        # Queues and streams that feed functions (events/triggers/). Their batches wait in a
        # pool behind sync calls, as asynchronous attempts do.
        self.triggers = Triggers(
            TriggerStore(self.registry.engine, self.vault.envelope),
            functools.partial(self.invoke, background=True),
            self.queues,
            self.current,
            self.metrics.registry,
            settings.region,
            self.async_invoker.accept,
        )
        # Batch jobs: their items run as background calls, as trigger batches do.
        self.jobs = JobRunner(
            JobStore(self.registry.engine), functools.partial(self.invoke, background=True),
            self.current,
        )  # fmt: skip
        self.started_at = time.time()
        self._started = False
        self._stopped = False
        self._warming: asyncio.Task[None] | None = None

    def _make_pool(self, record: FunctionRecord, task_root: str) -> Pool:
        refusal = self.sandboxing.refusal(record.spec)
        if refusal:
            raise InvalidSpec(refusal)
        uid = self.registry.uid(record.name, self.sandboxing.uids)
        # Secrets come from the verified bundle: the registry holds their names only.
        secrets = parse_spec(Path(task_root, SPEC_FILE).read_text()).secrets
        return Pool(
            record,
            task_root,
            self.backend,
            observer=self.observer,
            base_env={
                # The store an object trigger reads: a handler's plain boto3 client finds it.
                **self.triggers.environment(record.name),
                **dict(self.settings.instance_env),
                **self.sandboxing.environment(record.spec),
            },
            max_response_bytes=self.settings.max_payload_bytes,
            limits=self.limits,
            sandbox=self.sandboxing.config_for(record.spec, uid, task_root),
            secrets=secrets,
            capacity=self.capacity,
            region=self.settings.region,
        )

    async def start(self) -> None:
        """Bring up the functions that keep warm instances (min_instances > 0), and build the
        runtime zygotes deployed functions need, in the background. Idempotent."""
        if self._started:
            return
        self._started = True
        # Trees of bundles no function uses (a crash, a removal while stopped) go.
        await asyncio.to_thread(self.router.cache.collect, self.registry.digests_in_use())
        if isinstance(self.store, LocalStore):  # artifacts stored before encryption existed
            await asyncio.to_thread(self.store.encrypt_plaintext)
        for record in self.registry.list():
            if record.spec.min_instances > 0:
                with contextlib.suppress(Exception):
                    await self.router.pool_for(record.name)
        with contextlib.suppress(Exception):
            await self.provisioning.start()
        self._warming = asyncio.get_running_loop().create_task(self._warm_runtimes())
        await self.async_invoker.start()
        await self.triggers.start()
        await self.jobs.start()
        await self.observability.start()

    async def _warm_runtimes(self) -> None:
        for record in self.registry.list():
            # A broken function (corrupted artifact...) is reported when it is called.
            with contextlib.suppress(Exception):
                pool = await self.router.pool_for(record.name)
                pool.prepare(template=False)

    async def stop(self) -> None:
        """Stop every instance and close the stores. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._warming is not None:
            self._warming.cancel()
            await asyncio.gather(self._warming, return_exceptions=True)
        await self.observability.monitor.stop()
        await self.jobs.stop()
        await self.triggers.stop()
        await self.async_invoker.stop()
        await self.queues.close()
        await self.router.close()
        await self.backend.close()
        self.limits.close()
        await self.observability.stop()
        await self.limiter.close()
        self.registry.close()

    # -- operations the gateway and CLI expose ----------------------------------------------

    async def deploy(self, archive: bytes, name: str | None = None) -> tuple[FunctionRecord, bool]:
        """Store a bundle and make it the function's $LATEST; (record, changed). Reading,
        hashing and unpacking run off the event loop: a deploy never delays an invocation."""
        spec = await asyncio.to_thread(
            bundle.read_spec, archive, name=name, limits=self.unpack_limits
        )
        self._check_spec(spec)
        digest = await asyncio.to_thread(digest_of, archive)
        current = self.registry.get(spec.name)
        # Stored even when unchanged: put replaces a corrupted copy, so a redeploy repairs it.
        triggers = await asyncio.to_thread(self._store_and_unpack, archive, digest, spec)
        stored = spec.redacted()  # secret values stay in the (encrypted) bundle
        if current is not None and is_unchanged(current, digest, stored):
            await self.triggers.sync(spec.name, triggers)
            return current, False
        record, changed = self.registry.put(stored, digest, time.time())
        await self.triggers.sync(spec.name, triggers)  # first: instances get their store's env
        await self.router.replace(record)
        return record, changed

    async def redeploy_unchanged(self, spec: FunctionSpec, digest: str) -> FunctionRecord | None:
        """A deploy known to be unchanged without its bytes: ``spec`` and ``digest`` are what
        a bundle stored before holds (serve knows it by its directory's fingerprint). The
        function's record when it is still that very deploy, the spec passing this platform's
        checks and the stored artifact and its tree verified; else None (deploy the bytes)."""
        self._check_spec(spec)
        current = self.registry.get(spec.name)
        if not is_unchanged(current, digest, spec.redacted()):
            return None
        try:
            await self.router.pool_for(spec.name)  # verifies the artifact and its tree
        except (KeyError, ArtifactCorrupted, ServiceUnavailable):
            return None  # a deploy of the bytes stores a good copy
        return current

    async def prepare(self, name: str) -> None:
        """Build the function's zygote and template now, ahead of its first call."""
        pool = await self.router.pool_for(name)
        pool.prepare()

    def _check_spec(self, spec: FunctionSpec) -> None:
        check_runtime_installed(spec)
        capacity.check_spec(spec, self.settings.max_instances_total, self.max_memory_mb)
        refusal = self.sandboxing.refusal(spec)
        if refusal:
            raise InvalidSpec(refusal)

    async def rotate_master_key(self) -> dict[str, object]:
        """A new master key wraps every data key (artifacts, API key secrets); serving goes on."""
        rewrappers = {
            "apiKeys": self.keys.rewrap,
            "triggers": self.triggers.store.rewrap,
            "alarms": self.observability.alarms.rewrap,
        }
        if isinstance(self.store, LocalStore):
            rewrappers["artifacts"] = self.store.rewrap
        try:
            return await asyncio.to_thread(self.vault.rotate, rewrappers)
        except MasterKeyError as exc:
            raise InvalidRequest(str(exc)) from None

    def _store_and_unpack(
        self, archive: bytes, digest: str, spec: FunctionSpec
    ) -> list[TriggerSpec]:
        """The bundle stored and unpacked, checked; its [[triggers]]."""
        self.store.put(archive)
        try:
            root = self.router.prepare(digest)
            check_handler_defined(spec, root)
            triggers = [t for t, _ in triggers_of(Path(root, SPEC_FILE).read_text())]
        except InvalidSpec:
            self._collect(digest)
            raise
        return triggers

    @property
    def started(self) -> bool:
        return self._started and not self._stopped

    async def invoke(
        self,
        name: str,
        payload: bytes,
        client_context: str | None = None,
        *,
        kind: str = "",
        params: dict[str, str] | None = None,
        qualifier: str = "",
        request_id: str | None = None,
        background: bool = False,
        trace: TraceContext | None = None,
    ) -> Invocation:
        """Run one call of ``name``: ``qualifier`` ("", $LATEST, a version or an alias) picks
        the version; the invocation says which one ran. ``trace``: the caller's span."""
        call = functools.partial(self._invoke, name, payload, client_context, kind, params,
                                 qualifier, request_id, background)  # fmt: skip
        return await self.observability.traced(name, trace, call)

    async def _invoke(
        self, name: str, payload: bytes, client_context: str | None, kind: str,
        params: dict[str, str] | None, qualifier: str, request_id: str | None, background: bool,
        trace: TraceContext,
    ) -> Invocation:  # fmt: skip
        version = self.router.resolve(name, qualifier)
        pool = await self.router.pool_for(name, version)
        try:
            # The function's own rate limit (all callers together), before any instance work;
            # then reserved concurrency and the account's limit.
            await function_rate(self.limiter, pool.spec)
            self.concurrency.admit(name)
        except Throttled as refusal:
            self.observer.throttled(pool.record, refusal.message)
            raise
        try:
            return await pool.invoke(
                payload,
                request_id,
                client_context=client_context,
                kind=kind,
                params=params,
                qualifier=qualifier,
                background=background,
                trace=trace,
            )
        finally:
            self.concurrency.done(name)

    async def _alarm_event(self, function: str, event: bytes) -> None:
        """An alarm's notification to a function: an asynchronous invocation."""
        await self.async_invoker.accept(function, event)

    def current(self, name: str, version: str = LATEST) -> FunctionRecord:
        """A version's record as its live pool has it (no registry read), else the
        registry's; FunctionNotFound when there is none. Starts nothing."""
        pool = self.router.pools.get(pool_key(name, version))
        return pool.record if pool is not None else self.router.record(name, version)

    def url_config(self, name: str, qualifier: str = "") -> UrlSpec | None:
        """The [function.url] of the version a URL names (an alias: its main version); None
        when none is set or there is no such function. Starts nothing: an anonymous request
        must not make the platform do work."""
        try:
            return self.current(name, self.router.main_version(name, qualifier)).spec.url
        except FunctionNotFound:
            return None

    def get(self, name: str) -> FunctionRecord:
        record = self.registry.get(name)
        if record is None:
            raise FunctionNotFound(not_found_message(name, [r.name for r in self.registry.list()]))
        return record

    async def remove(self, name: str) -> FunctionRecord:
        record = self.registry.delete(name)
        if record is None:
            raise FunctionNotFound(not_found_message(name, [r.name for r in self.registry.list()]))
        await self.router.remove(name)
        self.provisioning.forget(name)
        self.async_configs.forget(name)
        await self.triggers.forget(name)
        self.observability.forget(name)
        self._collect(record.digest)
        return record

    def _collect(self, digest: str) -> None:
        """Drop an artifact and its unpacked copy once no function refers to it."""
        if digest not in self.registry.digests_in_use():
            self.store.delete(digest)
            self.router.cache.forget(digest)
