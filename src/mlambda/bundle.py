"""Bundles: pack a function directory into a deterministic archive; unpack it into the node cache.

The archive is a gzip'd tar with sorted entries and zeroed times and owners, so the same files
always give the same bytes and the same sha256: deploying unchanged code is then a no-op.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

from mlambda.errors import InvalidSpec
from mlambda.spec import SPEC_FILE, FunctionSpec, parse_spec

# Never shipped: caches and tooling state that differ between machines but not in meaning.
EXCLUDED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".venv", ".mlambda", ".pytest_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
EXCLUDED_NAMES = frozenset({".DS_Store"})


def pack(directory: Path) -> bytes:
    """Archive every file under ``directory`` (symlinks followed) into deterministic bytes."""
    directory = Path(directory)
    if not (directory / SPEC_FILE).is_file():
        raise InvalidSpec(f"{directory}: no {SPEC_FILE} here; a function directory needs one")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _files(directory):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(directory).as_posix())
            info.size = len(data)
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    # mtime=0 keeps the gzip header, and so the digest, independent of the clock.
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _files(directory: Path) -> list[Path]:
    found = []
    seen: set[str] = set()
    for root, dirs, files in os.walk(directory, followlinks=True):
        # Symlinks are followed, so a link to an ancestor would loop: visit each real dir once.
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS)
        for name in sorted(files):
            if name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES):
                continue
            path = Path(root, name)
            if path.is_file():
                found.append(path)
    return sorted(found)


def read_spec(archive: bytes, *, name: str | None = None) -> FunctionSpec:
    """Validate an uploaded bundle and return its spec (``name`` overrides function.name)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            member = members.get(SPEC_FILE)
            extracted = tar.extractfile(member) if member else None
            if extracted is None:
                raise InvalidSpec(f"bundle has no {SPEC_FILE} at its root")
            text = extracted.read().decode("utf-8", errors="replace")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidSpec(f"bundle is not a gzip'd tar archive: {exc}") from None
    spec = parse_spec(text, name=name)
    _check_handler_module(spec, set(members))
    return spec


def _check_handler_module(spec: FunctionSpec, names: set[str]) -> None:
    base = spec.handler_module.replace(".", "/")
    candidates = [f"{base}.py", f"{base}/__init__.py"]
    if any(c in names for c in candidates):
        return
    if any(n.startswith(base + ".") and n.endswith(".so") for n in names):
        return
    raise InvalidSpec(
        f"{SPEC_FILE}: function.handler {spec.handler!r} names module "
        f"{spec.handler_module!r}, but the bundle has no {candidates[0]} or {candidates[1]}"
    )


def unpack(archive: bytes, target: Path) -> Path:
    """Extract into ``target`` atomically; files become read-only, as Lambda's task root is."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            # The "data" filter refuses absolute paths, '..', devices and links out of the tree.
            tar.extractall(staging, filter="data")
        for path in staging.rglob("*"):
            if path.is_file():
                path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        staging.rename(target)
    except OSError:
        if target.is_dir():  # another deploy of the same digest won the race
            shutil.rmtree(staging, ignore_errors=True)
            return target
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
