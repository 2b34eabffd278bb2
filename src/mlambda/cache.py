"""The node's cache of unpacked bundles: each verified artifact unpacked once, read-only.

Unpacking writes a manifest beside the tree (every file's sha256 and mode, every link's
target), kept where instances cannot reach it. A tree is checked against its manifest before a
pool (and so a template) is built from it and whenever a deploy finds the code unchanged: a
file that was changed, added or removed since is found, and the tree is unpacked again from
the artifact, whose own digest the store verifies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlambda import bundle, unpacking
from mlambda.store.base import ArtifactStore

log = logging.getLogger("mlambda.cache")
CHUNK = 1 << 20


def manifest(tree: Path) -> dict[str, str]:
    """Path -> "sha256 mode" for files, "-> target" for links, "dir" for directories."""
    entries: dict[str, str] = {}
    for path in sorted(tree.rglob("*")):
        name = path.relative_to(tree).as_posix()
        if path.is_symlink():
            entries[name] = "-> " + os.readlink(path)
        elif path.is_dir():
            entries[name] = "dir"
        else:
            entries[name] = f"{_sha256(path)} {path.stat().st_mode & 0o7777:o}"
    return entries


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class BundleCache:
    def __init__(self, root: Path, store: ArtifactStore, limits: unpacking.Limits) -> None:
        self.root = Path(root)
        self.store = store
        self.limits = limits

    def task_root(self, digest: str) -> Path:
        return self.root / digest.replace(":", "-")

    def _manifest_path(self, digest: str) -> Path:
        return self.root / (digest.replace(":", "-") + ".manifest")

    def prepare(self, digest: str) -> Path:
        """The verified tree of ``digest``: unpacked now if it is missing or was tampered with.
        The artifact is read (and so verified) every time: a corrupted one is found even while
        its tree is intact, and the function does not run until it is redeployed."""
        target = self.task_root(digest)
        with ThreadPoolExecutor(1) as beside:
            # Both read every byte (the artifact, the tree): side by side, on two cores.
            intact = beside.submit(self._intact, digest, target) if target.is_dir() else None
            archive = self.store.get(digest)
            if intact is not None:
                if intact.result():
                    return target
                log.warning(
                    "unpacked bundle %s differs from its manifest: unpacking it again", digest
                )
                self.forget(digest)
        bundle.unpack(archive, target, self.limits)
        recorded = self._manifest_path(digest)
        if not recorded.exists():
            _write_private(recorded, json.dumps(manifest(target), sort_keys=True))
        return target

    def _intact(self, digest: str, target: Path) -> bool:
        try:
            recorded = json.loads(self._manifest_path(digest).read_text())
        except (OSError, ValueError):
            return False
        return bool(recorded == manifest(target))

    def forget(self, digest: str) -> None:
        """Remove the unpacked tree of ``digest`` and its manifest."""
        root = self.task_root(digest)
        if root.exists():
            bundle.make_removable(root)
            shutil.rmtree(root, ignore_errors=True)
        self._manifest_path(digest).unlink(missing_ok=True)

    def collect(self, in_use: set[str]) -> list[str]:
        """Remove the trees of digests no function uses any more; returns those removed."""
        if not self.root.is_dir():
            return []
        removed = []
        for entry in self.root.iterdir():
            if entry.name.startswith(".unpack-"):  # a crash mid-unpack left it
                bundle.make_removable(entry)
                shutil.rmtree(entry, ignore_errors=True)
                continue
            digest = entry.name.removesuffix(".manifest").replace("-", ":", 1)
            if entry.is_dir() and digest not in in_use:
                self.forget(digest)
                removed.append(digest)
        return removed


def _write_private(path: Path, text: str) -> None:
    """Written readable by the platform only, then renamed into place."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    with contextlib.suppress(OSError):
        os.replace(tmp, path)
