"""Pools: one per function version; slots, queue, dispatch, deadlines and scaling."""

from mlambda.pool.pool import Invocation, Pool

__all__ = ["Invocation", "Pool"]
