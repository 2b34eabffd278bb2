"""The artifact store contract, and an in-memory double.

Invariants every store keeps:
- ``put`` is idempotent: the same bytes give the same digest and are stored once.
- ``put`` of bytes whose stored copy is corrupted replaces that copy (a redeploy repairs).
- ``delete`` of a digest that is not stored, or malformed, does nothing.
- ``get`` verifies the bytes against their digest and raises ``ArtifactCorrupted`` on mismatch,
  so corrupted code is never executed; a missing digest raises ``KeyError``.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from mlambda.errors import ArtifactCorrupted


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify(digest: str, data: bytes) -> bytes:
    actual = digest_of(data)
    if actual != digest:
        raise ArtifactCorrupted(
            f"artifact {digest} is corrupted: its bytes hash to {actual}; "
            "redeploy the function to store a good copy"
        )
    return data


class ArtifactStore(Protocol):
    def put(self, data: bytes) -> str: ...

    def get(self, digest: str) -> bytes: ...

    def has(self, digest: str) -> bool: ...

    def delete(self, digest: str) -> None: ...


class MemoryStore:
    """In-process store for tests of the code around a store."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        digest = digest_of(data)
        self.objects[digest] = data
        return digest

    def get(self, digest: str) -> bytes:
        return verify(digest, self.objects[digest])

    def has(self, digest: str) -> bool:
        return digest in self.objects

    def delete(self, digest: str) -> None:
        self.objects.pop(digest, None)
