"""Artifacts as files under a local directory: ``<root>/sha256/<2 hex>/<64 hex>``.

With an ``Envelope`` (the platform always gives one) each artifact is stored encrypted with a
data key of its own (AES-256-GCM, bound to its digest), and the data key, wrapped by the master
key, lies beside it as ``<64 hex>.key``. Digests stay those of the plaintext, so content
addressing, deduplication and "unchanged" deploys work as before. An artifact stored before
encryption existed (no ``.key``) is read as it is and encrypted by ``encrypt_plaintext``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mlambda.errors import ArtifactCorrupted, ServiceUnavailable
from mlambda.security.crypto import DecryptionError, Envelope, MasterKeyError
from mlambda.store.base import digest_of, verify

KEY_SUFFIX = ".key"


class LocalStore:
    def __init__(self, root: Path, envelope: Envelope | None = None) -> None:
        self.root = Path(root)
        self.envelope = envelope

    def _path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64 or not hexdigest.isalnum():
            raise KeyError(digest)
        return self.root / algorithm / hexdigest[:2] / hexdigest

    def put(self, data: bytes) -> str:
        digest = digest_of(data)
        path = self._path(digest)
        with contextlib.suppress(KeyError, ArtifactCorrupted, ServiceUnavailable):
            if self._sealed_as_configured(path):
                self.get(digest)
                return digest  # already stored intact; a corrupted copy is replaced below
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.envelope is None:
            _write(path, data)
            path.with_name(path.name + KEY_SUFFIX).unlink(missing_ok=True)
            return digest
        with self.envelope.lock:  # a rotation waits until this artifact is written
            ciphertext, wrapped = self.envelope.seal(data, digest.encode())
            _write(path.with_name(path.name + KEY_SUFFIX), wrapped)
            _write(path, ciphertext)
        return digest

    def _sealed_as_configured(self, path: Path) -> bool:
        sealed = path.with_name(path.name + KEY_SUFFIX).is_file()
        return path.is_file() and sealed == (self.envelope is not None)

    def get(self, digest: str) -> bytes:
        path = self._path(digest)
        try:
            data = path.read_bytes()
            wrapped = _read_if_exists(path.with_name(path.name + KEY_SUFFIX))
        except FileNotFoundError:
            raise KeyError(digest) from None
        if wrapped is not None:
            data = self._open(digest, data, wrapped)
        return verify(digest, data)

    def _open(self, digest: str, data: bytes, wrapped: bytes) -> bytes:
        if self.envelope is None:
            raise ServiceUnavailable(f"artifact {digest} is encrypted and no master key is set")
        try:
            return self.envelope.open(data, wrapped, digest.encode())
        except DecryptionError as exc:
            raise ArtifactCorrupted(
                f"artifact {digest} is corrupted: it does not decrypt ({exc}); "
                "redeploy the function to store a good copy"
            ) from None
        except MasterKeyError as exc:
            raise ServiceUnavailable(f"artifact {digest}: {exc}") from None

    def has(self, digest: str) -> bool:
        try:
            return self._path(digest).is_file()
        except KeyError:
            return False

    def delete(self, digest: str) -> None:
        with contextlib.suppress(KeyError):  # a malformed digest names nothing stored
            path = self._path(digest)
            path.unlink(missing_ok=True)
            path.with_name(path.name + KEY_SUFFIX).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        for path in sorted((self.root / "sha256").glob("??/*")):
            if len(path.name) == 64:
                yield "sha256:" + path.name

    def rewrap(self) -> int:
        """Wrap every artifact's data key with the primary master key (rotation): the
        artifacts themselves are not rewritten."""
        assert self.envelope is not None
        count = 0
        for sidecar in sorted((self.root / "sha256").glob(f"??/*{KEY_SUFFIX}")):
            wrapped = sidecar.read_bytes()
            rewrapped = self.envelope.rewrap(wrapped)
            if rewrapped != wrapped:
                _write(sidecar, rewrapped)
                count += 1
        return count

    def encrypt_plaintext(self) -> int:
        """Encrypt the artifacts stored before encryption (once, at start)."""
        if self.envelope is None:
            return 0
        count = 0
        for digest in list(self.digests()):
            path = self._path(digest)
            if not path.with_name(path.name + KEY_SUFFIX).exists():
                with contextlib.suppress(ArtifactCorrupted):  # reported when it is read
                    self.put(self.get(digest))
                    count += 1
        return count


def _read_if_exists(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write(path: Path, data: bytes) -> None:
    """Write then rename: a crash mid-write never leaves a partial file under its name."""
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
