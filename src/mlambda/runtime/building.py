"""Building a model function's model: the loader for its framework, the weights a template
reads once for its instances to share, the files a template maps for them."""

from __future__ import annotations

import importlib
import mmap
import os
from typing import Any

from mlambda.runtime import protocol
from mlambda.runtime.loaders import FRAMEWORKS


def load_model(config: protocol.ModelConfig, task_root: str, shared: Any = None) -> Any:
    framework = FRAMEWORKS[config.framework]
    loader = importlib.import_module(f"mlambda.runtime.loaders.{framework.module}")
    path = os.path.join(task_root, config.path)
    if shared is not None:
        return loader.load(path, config, shared=shared)
    return loader.load(path, config)


def shared_weights(config: protocol.ModelConfig, task_root: str) -> Any:
    """In a template of a model built after the fork: the weights its loader reads once for
    every instance to use in place (``share``), or None where it has no such way."""
    framework = FRAMEWORKS[config.framework]
    loader = importlib.import_module(f"mlambda.runtime.loaders.{framework.module}")
    share = getattr(loader, "share", None)
    return share(os.path.join(task_root, config.path)) if share is not None else None


def map_files(path: str) -> list[mmap.mmap]:
    """Map a model file (or every file of a model directory) read-only."""
    paths = [path]
    if os.path.isdir(path):
        paths = [os.path.join(root, f) for root, _, files in os.walk(path) for f in files]
    maps = []
    for name in paths:
        if os.path.getsize(name) == 0:
            continue
        with open(name, "rb") as handle:
            maps.append(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
    for mapped in maps:
        mapped.madvise(mmap.MADV_WILLNEED)
    return maps
