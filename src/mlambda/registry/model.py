"""Registry records (plain values) and the pure rules about them: versions, aliases, routing."""

from __future__ import annotations

import base64
import dataclasses
import re
import uuid
from collections.abc import Mapping

from mlambda.errors import InvalidSpec, NotFound
from mlambda.spec import FunctionSpec

LATEST = "$LATEST"
# Lambda's own limits and patterns, so a name that works there works here.
ALIAS_NAME = re.compile(r"(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}")
MAX_DESCRIPTION = 256
# How many earlier routings an alias keeps for `mlambda rollback`.
HISTORY = 20
_REVISIONS = uuid.UUID("5a6c0c2e-8f0b-4c1e-9d1d-6d6c616d6264")


@dataclasses.dataclass(frozen=True)
class FunctionRecord:
    """$LATEST (the mutable head) or one published, immutable version of a function."""

    name: str
    version: str
    digest: str
    spec: FunctionSpec
    created_at: float
    updated_at: float
    description: str = ""

    @property
    def code_sha256(self) -> str:
        return code_sha256(self.digest)

    @property
    def revision_id(self) -> str:
        """Changes with every change to the record (Lambda's RevisionId precondition)."""
        return revision_id(self.name, self.version, self.digest, repr(self.updated_at))

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "description": self.description,
            "revisionId": self.revision_id,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            # Secrets by name only: their values never leave the bundle and the instance.
            "config": {**self.spec.to_dict(), "secrets": sorted(self.spec.secrets)},
        }


@dataclasses.dataclass(frozen=True)
class Routing:
    """Where an alias sends calls: ``version``, except ``weights`` (version -> share of calls)."""

    version: str
    weights: tuple[tuple[str, float], ...] = ()

    @property
    def versions(self) -> list[str]:
        return [self.version, *(v for v, _ in self.weights)]

    def to_dict(self) -> dict[str, object]:
        return {"version": self.version, "weights": dict(self.weights)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> Routing:
        weights = raw.get("weights") or {}
        assert isinstance(weights, dict)
        return cls(str(raw["version"]), tuple((str(v), float(w)) for v, w in weights.items()))


@dataclasses.dataclass(frozen=True)
class Alias:
    function: str
    name: str
    routing: Routing
    description: str = ""
    revision_id: str = ""
    updated_at: float = 0.0
    # Earlier routings, the most recent last (what rollback goes back to).
    history: tuple[Routing, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "function": self.function,
            "name": self.name,
            **self.routing.to_dict(),
            "description": self.description,
            "revisionId": self.revision_id,
            "updatedAt": self.updated_at,
            "previous": self.history[-1].to_dict() if self.history else None,
        }


def is_unchanged(current: FunctionRecord | None, digest: str, spec: FunctionSpec) -> bool:
    """A deploy is a no-op when both the code and the effective config are the same."""
    return current is not None and current.digest == digest and current.spec == spec


def code_sha256(digest: str) -> str:
    """Lambda's CodeSha256 (base64 of the bundle's SHA-256) from an artifact digest."""
    return base64.b64encode(bytes.fromhex(digest.removeprefix("sha256:"))).decode()


def revision_id(*parts: str) -> str:
    return str(uuid.uuid5(_REVISIONS, "\0".join(parts)))


def is_version(qualifier: str) -> bool:
    """A published version number (as opposed to $LATEST or an alias name)."""
    return qualifier.isdigit() and qualifier == str(int(qualifier)) and int(qualifier) > 0


def merge_qualifiers(in_name: str, in_query: str | None) -> str:
    """The qualifier a call named: in the name or ARN (``fn:live``), or as ``?Qualifier=``;
    both must agree when both are given."""
    if in_query and in_name and in_query != in_name:
        raise InvalidSpec(
            "The derived qualifier from the function name does not match the specified "
            f"qualifier ({in_name!r} vs {in_query!r})"
        )
    return in_query or in_name


def check_alias_name(name: str) -> str:
    if not ALIAS_NAME.fullmatch(name):
        raise InvalidSpec(
            f"alias name {name!r} is not valid: 1-128 letters, digits, '-' or '_', and not "
            "only digits (a number names a version)"
        )
    return name


def check_description(text: str) -> str:
    if len(text) > MAX_DESCRIPTION:
        raise InvalidSpec(f"description is {len(text)} characters; at most {MAX_DESCRIPTION}")
    return text


def check_routing(routing: Routing, exists: Mapping[str, bool]) -> Routing:
    """An alias's routing, checked against the function's versions (``exists[v]``): the main
    version is $LATEST or a published one; one additional published version may take a share
    in [0, 1) of the calls, as Lambda's RoutingConfig.AdditionalVersionWeights."""
    if routing.version != LATEST and not is_version(routing.version):
        raise InvalidSpec(
            f"FunctionVersion must be $LATEST or a version number, got {routing.version!r}"
        )
    if len(routing.weights) > 1:
        raise InvalidSpec("an alias routes to at most one additional version")
    for version, weight in routing.weights:
        if not is_version(version):
            raise InvalidSpec(
                f"an additional version must be a published version number, got {version!r}"
            )
        if routing.version == LATEST:
            raise InvalidSpec("an alias pointing at $LATEST cannot split traffic; publish first")
        if version == routing.version:
            raise InvalidSpec(f"version {version} is already the alias's main version")
        if not 0.0 <= weight < 1.0:
            raise InvalidSpec(f"the weight of version {version} must be in [0, 1), got {weight:g}")
    for version in routing.versions:
        if version != LATEST and not exists.get(version, False):
            raise NotFound(f"version {version} does not exist (mlambda versions NAME lists them)")
    return routing


def pick(routing: Routing, draw: float) -> str:
    """The version one call runs, for ``draw`` uniform in [0, 1): the additional version takes
    its weight's share of the draws, the main version the rest."""
    for version, weight in routing.weights:
        if draw < weight:
            return version
        draw -= weight
    return routing.version


def with_change(alias: Alias, routing: Routing) -> tuple[Routing, ...]:
    """The history after ``alias`` moves to ``routing`` (unchanged routing: unchanged history)."""
    if routing == alias.routing:
        return alias.history
    return (*alias.history, alias.routing)[-HISTORY:]


def parse_weights(raw: Mapping[str, object]) -> tuple[tuple[str, float], ...]:
    """``{"2": 0.1}`` (the API's and Lambda's AdditionalVersionWeights) -> routing weights."""
    weights = []
    for version, weight in raw.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise InvalidSpec(f"the weight of version {version} must be a number, got {weight!r}")
        weights.append((str(version), float(weight)))
    return tuple(weights)
