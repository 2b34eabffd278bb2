"""serve's startup: from launch to the first answer, no step waiting on one it does not need.

Three pieces of work make most of a boot, and none needs another until the end:

- the zygote chain: the base zygote, the runtime zygote importing the model's packages (numpy
  and scikit-learn, onnxruntime, torch: often the longest step), the template loading the model;
- the control plane: importing it (SQLAlchemy, Starlette, uvicorn...) and building it;
- each ``--deploy`` directory's bundle: packing it (gzip) is most of a large model's deploy.

So the backend is made first (its modules are light) and each ``--deploy`` function's runtime
zygote starts at once, chosen from the function's own files; the control plane is imported on a
thread, the event loop answering the zygotes meanwhile. A directory deployed before and unchanged
since is known by its fingerprint and not packed again; one that must be packed is packed on a
thread from the start. Each function's template starts as soon as the function is deployed, and
the HTTP side (Starlette, uvicorn) is imported while the templates build.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlambda import bundle
from mlambda.backends.base import Backend, StartRequest
from mlambda.backends.choice import make_backend
from mlambda.backends.limits import ResourceLimits
from mlambda.backends.sandbox import make_sandboxing
from mlambda.errors import MlambdaError
from mlambda.settings import Settings
from mlambda.spec import SPEC_FILE, FunctionSpec
from mlambda.unpacking import Limits

if TYPE_CHECKING:
    from mlambda.platform import Platform
    from mlambda.registry import FunctionRecord

# What serve needs besides the backend, imported on a thread while the zygotes start; then
# the HTTP side, on a thread while the templates build.
CONTROL_PLANE = ("mlambda.platform",)
GATEWAY = ("mlambda.gateway.app", "uvicorn")
FINGERPRINTS_FILE = "fingerprints.json"
# Directories remembered (the latest): a few per function deployed from serve is plenty.
MAX_FINGERPRINTS = 256


class Fingerprints:
    """Which bundle a directory packed into: its fingerprint (with the unpacking limits it was
    checked against) -> the artifact's digest. Kept in the data dir, readable by serve only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.known: dict[str, str] = dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            self.known = {}  # none yet, or unreadable: every directory is packed

    @staticmethod
    def key(fingerprint: str, limits: Limits) -> str:
        return f"{fingerprint} {limits.max_bytes} {limits.max_files} {limits.max_ratio}"

    def put(self, key: str, digest: str) -> None:
        self.known.pop(key, None)
        self.known[key] = digest
        kept = dict(list(self.known.items())[-MAX_FINGERPRINTS:])
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(kept, indent=1))
        tmp.replace(self.path)  # whole or not at all: a crash leaves the previous file
        self.known = kept


@dataclass
class Source:
    """One ``--deploy`` directory, and what was learnt of it before the platform was up."""

    directory: Path
    spec: FunctionSpec | None = None  # None: not a function directory, or invalid (deploy says)
    key: str | None = None  # in Fingerprints
    fingerprinted: asyncio.Task[None] | None = None
    archive: asyncio.Task[tuple[bytes, FunctionSpec]] | None = None


class Boot:
    """serve's startup: ``platform()`` builds and starts the platform, the zygotes of the
    ``--deploy`` functions starting beside it; ``deployments()`` then deploys each directory."""

    def __init__(self, settings: Settings, directories: list[Path]) -> None:
        self.settings = settings
        self.sources = [Source(Path(d)) for d in directories]
        data_dir = Path(settings.data_dir).resolve()
        self.fingerprints = Fingerprints(data_dir / FINGERPRINTS_FILE)
        self.limits = Limits(
            settings.max_unpacked_bytes, settings.max_bundle_files, settings.max_bundle_ratio
        )
        self._tasks: set[asyncio.Task[Any]] = set()

    async def platform(self) -> Platform:
        # The platform's own umask (Platform sets it again): what the zygotes write is private.
        os.umask(0o077)
        settings = self.settings
        limits = ResourceLimits(settings.memory_limits, pids_max=settings.instance_pids_max)
        backend = make_backend(settings, limits)
        try:
            for source in self.sources:
                self._look(source, backend)
            data_dir = Path(settings.data_dir).resolve()
            data_dir.mkdir(parents=True, exist_ok=True)
            # The sandbox probe is a process of its own: it runs beside the imports.
            probe = self._spawn(asyncio.to_thread(make_sandboxing, settings, data_dir, limits))
            await asyncio.to_thread(_import, CONTROL_PLANE)
            from mlambda.platform import Platform

            platform = Platform(settings, backend=backend, limits=limits, sandboxing=await probe)
        except BaseException:
            await self.close()
            await backend.close()
            limits.close()
            raise
        try:
            await platform.start()
        except BaseException:
            await self.close()
            await platform.stop()
            raise
        return platform

    def _look(self, source: Source, backend: Backend) -> None:
        """Read the directory's spec and start its runtime zygote; fingerprint it (or pack it,
        when it is not known) on a thread."""
        with contextlib.suppress(MlambdaError, OSError):  # the deploy reports it
            if (source.directory / SPEC_FILE).is_file():
                source.spec = bundle.directory_spec(source.directory)
        if source.spec is None:
            source.archive = self._spawn(asyncio.to_thread(bundle.pack_path, source.directory))
            return
        # Only the runtime zygote: the template needs the deployed, verified bundle.
        request = StartRequest(
            instance_id="boot", function_version="$LATEST", spec=source.spec, task_root="", env={}
        )
        self._spawn(backend.prepare(request, template=False))
        source.fingerprinted = self._spawn(self._fingerprint(source))

    async def _fingerprint(self, source: Source) -> None:
        fingerprint = await asyncio.to_thread(bundle.fingerprint, source.directory)
        source.key = self.fingerprints.key(fingerprint, self.limits)
        if source.key not in self.fingerprints.known:
            source.archive = self._spawn(asyncio.to_thread(bundle.pack_path, source.directory))

    async def deployments(
        self, platform: Platform
    ) -> AsyncIterator[tuple[Path, FunctionRecord, bool]]:
        """Deploy each directory in order: (directory, record, changed), its template started."""
        for source in self.sources:
            record, changed = await self._deploy(platform, source)
            await platform.prepare(record.name)
            yield source.directory, record, changed

    async def _deploy(self, platform: Platform, source: Source) -> tuple[FunctionRecord, bool]:
        if source.fingerprinted is not None:
            await asyncio.gather(source.fingerprinted, return_exceptions=True)  # else: pack
        digest = self.fingerprints.known.get(source.key or "")
        if source.spec is not None and digest is not None:
            record = await platform.redeploy_unchanged(source.spec, digest)
            if record is not None:
                return record, False
        if source.archive is None:
            source.archive = self._spawn(asyncio.to_thread(bundle.pack_path, source.directory))
        archive, _ = await source.archive
        record, changed = await platform.deploy(archive)
        if source.key is not None:
            # Only if the directory did not change while it was packed.
            again = await asyncio.to_thread(bundle.fingerprint, source.directory)
            if self.fingerprints.key(again, self.limits) == source.key:
                with contextlib.suppress(OSError):
                    self.fingerprints.put(source.key, record.digest)
        return record, changed

    async def import_gateway(self) -> None:
        """Import the HTTP side off the event loop, which meanwhile answers the templates."""
        await asyncio.to_thread(_import, GATEWAY)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # seen: a deploy that awaits the task raises it again

    async def close(self) -> None:
        """Stop what is still running of the startup (a deploy failed, serve stops)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _import(modules: tuple[str, ...]) -> None:
    for module in modules:
        importlib.import_module(module)
