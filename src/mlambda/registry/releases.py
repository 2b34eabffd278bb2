"""Published versions and aliases, stored beside $LATEST (SQLAlchemy Core, same engine)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import sqlalchemy as sa

from mlambda.errors import Conflict, FunctionNotFound, InvalidSpec, NotFound, PreconditionFailed
from mlambda.registry import tables
from mlambda.registry.model import (
    LATEST,
    Alias,
    FunctionRecord,
    Routing,
    check_alias_name,
    check_description,
    check_routing,
    is_version,
    revision_id,
    with_change,
)
from mlambda.spec import FunctionSpec

V, A, F = tables.versions, tables.aliases, tables.functions


class Releases:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- versions -------------------------------------------------------------------------------

    def publish(
        self,
        name: str,
        description: str,
        now: float,
        *,
        code_sha256: str = "",
        revision: str = "",
    ) -> tuple[FunctionRecord, bool]:
        """Freeze $LATEST as the next version; (record, created). Nothing changed since the
        last version: that version, as Lambda does."""
        check_description(description)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(F).where(F.c.name == name)).first()
            if row is None:
                raise FunctionNotFound(f"Function not found: {_ref(name)}")
            latest = _latest(row._mapping)
            if code_sha256 and code_sha256 != latest.code_sha256:
                raise InvalidSpec(
                    f"CodeSha256 {code_sha256} does not match $LATEST's ({latest.code_sha256}): "
                    "the code changed since you read it"
                )
            if revision and revision != latest.revision_id:
                raise PreconditionFailed(
                    "The Revision Id provided does not match the latest Revision Id. Call the "
                    "GetFunction/GetAlias API to retrieve the latest Revision Id"
                )
            last = conn.execute(
                sa.select(V).where(V.c.name == name).order_by(V.c.version.desc()).limit(1)
            ).first()
            if last is not None:
                previous = _version(last._mapping)
                if previous.digest == latest.digest and previous.spec == latest.spec:
                    return previous, False
            counter = tables.version_counters
            number = (
                conn.execute(sa.select(counter.c.last).where(counter.c.name == name)).scalar() or 0
            ) + 1
            if number == 1:
                conn.execute(counter.insert().values(name=name, last=number))
            else:
                conn.execute(counter.update().where(counter.c.name == name).values(last=number))
            conn.execute(
                V.insert().values(
                    name=name,
                    version=number,
                    digest=latest.digest,
                    spec=latest.spec.to_dict(),
                    description=description,
                    created_at=now,
                )
            )
        record = FunctionRecord(
            name, str(number), latest.digest, latest.spec, now, now, description
        )
        return record, True

    def versions(self, name: str) -> list[FunctionRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(V).where(V.c.name == name).order_by(V.c.version))
            return [_version(row._mapping) for row in rows]

    def version(self, name: str, version: str) -> FunctionRecord | None:
        if not is_version(version):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(V).where(V.c.name == name, V.c.version == int(version))
            ).first()
        return _version(row._mapping) if row else None

    def delete_version(self, name: str, version: str) -> FunctionRecord:
        """Delete a published version; refused while an alias routes to it."""
        if version == LATEST:
            raise InvalidSpec(
                f"$LATEST of {name!r} cannot be deleted on its own: remove the function instead"
            )
        record = self.version(name, version)
        if record is None:
            raise NotFound(f"Function not found: {_ref(name, version)}")
        routing = [a.name for a in self.aliases(name) if version in a.routing.versions]
        if routing:
            names = ", ".join(repr(a) for a in routing)
            raise Conflict(
                f"version {version} of {name!r} cannot be deleted: alias{'es' * (len(routing) > 1)}"
                f" {names} route{'s' * (len(routing) == 1)} calls to it (point "
                f"{'them' if len(routing) > 1 else 'it'} elsewhere first)"
            )
        with self.engine.begin() as conn:
            conn.execute(V.delete().where(V.c.name == name, V.c.version == int(version)))
        return record

    # -- aliases --------------------------------------------------------------------------------

    def counts(self) -> dict[str, tuple[int, int]]:
        """Published versions and aliases per function, in two queries (the console's list)."""
        found: dict[str, tuple[int, int]] = {}
        with self.engine.connect() as conn:
            for table, at in ((tables.versions, 0), (tables.aliases, 1)):
                query = sa.select(table.c.name, sa.func.count()).group_by(table.c.name)
                for name, count in conn.execute(query):
                    pair = list(found.get(name, (0, 0)))
                    pair[at] = count
                    found[name] = (pair[0], pair[1])
        return found

    def aliases(self, name: str) -> list[Alias]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(A).where(A.c.name == name).order_by(A.c.alias))
            return [_alias(row._mapping) for row in rows]

    def alias(self, name: str, alias: str) -> Alias | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(A).where(A.c.name == name, A.c.alias == alias)).first()
        return _alias(row._mapping) if row else None

    def put_alias(
        self,
        name: str,
        alias: str,
        routing: Routing,
        now: float,
        *,
        description: str | None = None,
        must_exist: bool | None = None,
        revision: str = "",
    ) -> tuple[Alias, bool]:
        """Create or move an alias; (alias, created). ``must_exist``: True only updates (404
        when absent), False only creates (409 when present); None does either."""
        check_alias_name(alias)
        if description is not None:
            check_description(description)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(F.c.name).where(F.c.name == name)).first() is None:
                raise FunctionNotFound(f"Function not found: {_ref(name)}")
            published = {
                str(v)
                for v in conn.execute(sa.select(V.c.version).where(V.c.name == name)).scalars()
            }
            check_routing(routing, {v: True for v in published})
            row = conn.execute(sa.select(A).where(A.c.name == name, A.c.alias == alias)).first()
            current = _alias(row._mapping) if row else None
            if current is None and must_exist:
                raise NotFound(f"Alias not found: {_ref(name, alias)}")
            if current is not None and must_exist is False:
                raise Conflict(f"Alias already exists: {_ref(name, alias)}")
            if current is not None and revision and revision != current.revision_id:
                raise PreconditionFailed(
                    "The Revision Id provided does not match the latest Revision Id. Call the "
                    "GetAlias API to retrieve the latest Revision Id"
                )
            history = with_change(current, routing) if current else ()
            text = (
                description if description is not None else (current.description if current else "")
            )
            saved = Alias(
                name,
                alias,
                routing,
                text,
                revision_id(name, alias, repr(now), _dump(routing)),
                now,
                history,
            )
            values = {
                "routing": routing.to_dict(),
                "history": [r.to_dict() for r in history],
                "description": text,
                "revision_id": saved.revision_id,
                "updated_at": now,
            }
            if current is None:
                conn.execute(A.insert().values(name=name, alias=alias, **values))
            else:
                conn.execute(
                    A.update().where(A.c.name == name, A.c.alias == alias).values(**values)
                )
        return saved, current is None

    def rollback(self, name: str, alias: str, now: float) -> Alias:
        """Point the alias back at the routing it had before its last change (skipping routings
        whose versions were deleted since)."""
        current = self.alias(name, alias)
        if current is None:
            raise NotFound(f"Alias not found: {_ref(name, alias)}")
        published = {r.version for r in self.versions(name)}
        history = list(current.history)
        while history:
            routing = history.pop()
            if all(v == LATEST or v in published for v in routing.versions):
                break
        else:
            raise Conflict(
                f"alias {alias!r} of {name!r} has no earlier version to go back to "
                f"(it points at {current.routing.version})"
            )
        saved = Alias(
            name,
            alias,
            routing,
            current.description,
            revision_id(name, alias, repr(now), _dump(routing)),
            now,
            tuple(history),
        )
        with self.engine.begin() as conn:
            conn.execute(
                A.update()
                .where(A.c.name == name, A.c.alias == alias)
                .values(
                    routing=routing.to_dict(),
                    history=[r.to_dict() for r in history],
                    revision_id=saved.revision_id,
                    updated_at=now,
                )
            )
        return saved

    def delete_alias(self, name: str, alias: str) -> Alias:
        current = self.alias(name, alias)
        if current is None:
            raise NotFound(f"Alias not found: {_ref(name, alias)}")
        with self.engine.begin() as conn:
            conn.execute(A.delete().where(A.c.name == name, A.c.alias == alias))
        return current

    # -- with the function ----------------------------------------------------------------------

    @staticmethod
    def delete_all(conn: sa.Connection, name: str) -> None:
        """Every version, alias and the version counter of a removed function."""
        for table in (V, A, tables.version_counters):
            conn.execute(table.delete().where(table.c.name == name))

    @staticmethod
    def digests(conn: sa.Connection) -> set[str]:
        return set(conn.execute(sa.select(V.c.digest)).scalars())


def _ref(name: str, qualifier: str = "") -> str:
    return f"{name}:{qualifier}" if qualifier else name


def _dump(routing: Routing) -> str:
    return json.dumps(routing.to_dict(), sort_keys=True)


def _latest(row: Any) -> FunctionRecord:
    spec = msgspec.convert(row["spec"], FunctionSpec)
    return FunctionRecord(
        row["name"], LATEST, row["digest"], spec, row["created_at"], row["updated_at"]
    )


def _version(row: Any) -> FunctionRecord:
    spec = msgspec.convert(row["spec"], FunctionSpec)
    created = row["created_at"]
    return FunctionRecord(
        row["name"], str(row["version"]), row["digest"], spec, created, created, row["description"]
    )


def _alias(row: Any) -> Alias:
    return Alias(
        function=row["name"],
        name=row["alias"],
        routing=Routing.from_dict(row["routing"]),
        description=row["description"],
        revision_id=row["revision_id"],
        updated_at=row["updated_at"],
        history=tuple(Routing.from_dict(r) for r in row["history"]),
    )
