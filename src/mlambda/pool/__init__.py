"""Pools: one per function version; slots, queue, dispatch, deadlines and scaling."""

from mlambda.pool.invocation import Invocation, Observer
from mlambda.pool.pool import Pool

__all__ = ["Invocation", "Observer", "Pool"]
