"""Artifacts as files under a local directory: ``<root>/sha256/<2 hex>/<64 hex>``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from mlambda.store.base import digest_of, verify


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64 or not hexdigest.isalnum():
            raise KeyError(digest)
        return self.root / algorithm / hexdigest[:2] / hexdigest

    def put(self, data: bytes) -> str:
        digest = digest_of(data)
        path = self._path(digest)
        if path.is_file() and digest_of(path.read_bytes()) == digest:
            return digest  # already stored intact; a corrupted copy is replaced below
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a crash mid-write never leaves a partial artifact under its digest.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o400)  # the platform's only: instances never read the store
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        try:
            data = self._path(digest).read_bytes()
        except FileNotFoundError:
            raise KeyError(digest) from None
        return verify(digest, data)

    def has(self, digest: str) -> bool:
        try:
            return self._path(digest).is_file()
        except KeyError:
            return False

    def delete(self, digest: str) -> None:
        with contextlib.suppress(KeyError):  # a malformed digest names nothing stored
            self._path(digest).unlink(missing_ok=True)
