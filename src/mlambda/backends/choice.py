"""The backend the settings choose. Light to import (no registry, no HTTP stack), so that serve
can start the zygotes before it has imported the rest of the platform."""

from __future__ import annotations

from mlambda.backends.base import Backend
from mlambda.backends.limits import ResourceLimits
from mlambda.backends.local import LocalBackend
from mlambda.backends.zygotes import ZygoteBackend
from mlambda.pool.environment import THREAD_POOL_VARIABLES
from mlambda.settings import Settings


def make_backend(settings: Settings, limits: ResourceLimits | None = None) -> Backend:
    if settings.backend == "process":
        return LocalBackend()
    if settings.backend == "zygote":
        env = {**dict(settings.instance_env), **{v: "1" for v in THREAD_POOL_VARIABLES}}
        return ZygoteBackend(
            env={**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"},
            budget_mb=settings.zygote_memory_mb,
            spares=settings.prefork_spare,
            limits=limits,
        )
    raise ValueError(f"backend must be 'process' or 'zygote', got {settings.backend!r}")
