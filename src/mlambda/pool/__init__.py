"""Pools: one per function version; slots, queue, dispatch, deadlines and scaling."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlambda.pool.invocation import Invocation, Observer
    from mlambda.pool.pool import Pool

__all__ = ["Invocation", "Observer", "Pool"]

# Imported when first named, not with the package: the backends import pool.environment, and
# serve starts its zygotes before it imports the registry (SQLAlchemy) that the pool needs.
_HOMES = {
    "Invocation": "mlambda.pool.invocation",
    "Observer": "mlambda.pool.invocation",
    "Pool": "mlambda.pool.pool",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
