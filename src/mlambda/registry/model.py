"""Registry records (plain values) and the pure rules about them."""

from __future__ import annotations

import dataclasses

from mlambda.spec import FunctionSpec

LATEST = "$LATEST"


@dataclasses.dataclass(frozen=True)
class FunctionRecord:
    name: str
    version: str
    digest: str
    spec: FunctionSpec
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            # Secrets by name only: their values never leave the bundle and the instance.
            "config": {**self.spec.to_dict(), "secrets": sorted(self.spec.secrets)},
        }


def is_unchanged(current: FunctionRecord | None, digest: str, spec: FunctionSpec) -> bool:
    """A deploy is a no-op when both the code and the effective config are the same."""
    return current is not None and current.digest == digest and current.spec == spec
