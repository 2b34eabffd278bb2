"""Sizing an instance's native thread pools (OpenMP, BLAS, torch) inside the instance.

Zygotes and templates run with one thread per pool: a process that has started pool threads
cannot be forked safely. An instance forked from them sizes its pools to the number the platform
chose for it (pool/threads.py). Finding the pools of the loaded libraries costs about 10 ms, so
it is done once before the fork (``discover``); setting them after it costs microseconds.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# The variables libraries read when they start their pools; a fresh process gets them in its
# environment, a forked instance has them set to what its pools were sized to.
THREAD_POOL_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
# Modules whose import loads a library with a pool threadpoolctl can size.
_NATIVE = ("numpy", "scipy", "sklearn", "torch", "xgboost", "lightgbm")

_controller: Any = None


def discover() -> None:
    """Before serving forks: find the pools of the libraries loaded so far (no thread starts)."""
    global _controller
    if not any(name in sys.modules for name in _NATIVE):
        return
    try:
        from threadpoolctl import ThreadpoolController  # shipped with scikit-learn
    except ImportError:
        return
    _controller = ThreadpoolController()


def size(threads: int, from_one: bool = True) -> None:
    """Give the pools of loaded libraries ``threads`` threads, and the variables code reads
    that many; ``from_one``: right after a fork, where they have one (the zygote's)."""
    for name in THREAD_POOL_VARIABLES:
        os.environ[name] = str(threads)
    if threads != 1 or not from_one:
        resize(threads)


def resize(threads: int) -> None:
    """Give the pools that can change size (torch's, OpenMP's, BLAS's) ``threads`` threads; an
    ONNX Runtime or TFLite session keeps the size it was built with."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    controller = _controller
    if controller is None and any(name in sys.modules for name in _NATIVE):
        discover()  # loaded by init after the fork: found now, at the cost of the search
        controller = _controller
    if controller is not None:
        for library in controller.lib_controllers:
            library.set_num_threads(threads)
