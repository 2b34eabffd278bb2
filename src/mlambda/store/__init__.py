"""Content-addressed artifact stores."""

from mlambda.store.base import ArtifactStore, MemoryStore, digest_of
from mlambda.store.local import LocalStore

__all__ = ["ArtifactStore", "LocalStore", "MemoryStore", "digest_of"]
