"""Registry: functions stored with SQLAlchemy Core (SQLite by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa

from mlambda.errors import InvalidSpec
from mlambda.events.config import AsyncSpec
from mlambda.registry import tables
from mlambda.registry.concurrency import ConcurrencySettings
from mlambda.registry.model import LATEST, FunctionRecord, is_unchanged
from mlambda.registry.releases import Releases
from mlambda.spec import FunctionSpec


class Registry:
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        tables.metadata.create_all(self.engine)
        tables.add_missing_columns(self.engine)
        self.releases = Releases(self.engine)
        self.concurrency = ConcurrencySettings(self.engine)

    @classmethod
    def sqlite(cls, path: Path) -> Registry:
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{path}")

    def close(self) -> None:
        self.engine.dispose()

    def get(self, name: str) -> FunctionRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(tables.functions).where(tables.functions.c.name == name)
            ).first()
        return _record(row._mapping) if row else None

    def list(self) -> list[FunctionRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(tables.functions).order_by(tables.functions.c.name))
            return [_record(row._mapping) for row in rows]

    def put(self, spec: FunctionSpec, digest: str, now: float) -> tuple[FunctionRecord, bool]:
        """Make ``spec``/``digest`` the function's $LATEST; returns (record, changed)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(tables.functions).where(tables.functions.c.name == spec.name)
            ).first()
            current = _record(row._mapping) if row else None
            if current is not None and is_unchanged(current, digest, spec):
                return current, False
            values = {"version": LATEST, "digest": digest, "spec": spec.to_dict()}
            if current is None:
                conn.execute(
                    tables.functions.insert().values(
                        name=spec.name, created_at=now, updated_at=now, **values
                    )
                )
            else:
                conn.execute(
                    tables.functions.update()
                    .where(tables.functions.c.name == spec.name)
                    .values(updated_at=now, **values)
                )
        created = current.created_at if current else now
        return FunctionRecord(spec.name, LATEST, digest, spec, created, now), True

    def delete(self, name: str) -> FunctionRecord | None:
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(tables.functions).where(tables.functions.c.name == name)
            ).first()
            if row is None:
                return None
            conn.execute(tables.functions.delete().where(tables.functions.c.name == name))
            conn.execute(tables.sandbox_uids.delete().where(tables.sandbox_uids.c.name == name))
            table = tables.event_invoke_configs
            conn.execute(table.delete().where(table.c.name == name))
            Releases.delete_all(conn, name)
            ConcurrencySettings.delete_all(conn, name)
            triggers = tables.triggers
            mine = sa.select(triggers.c.id).where(triggers.c.function == name)
            checkpoints = tables.trigger_checkpoints
            conn.execute(checkpoints.delete().where(checkpoints.c.trigger.in_(mine)))
            seen = tables.objects_seen
            conn.execute(seen.delete().where(seen.c.trigger.in_(mine)))
            conn.execute(triggers.delete().where(triggers.c.function == name))
        return _record(row._mapping)

    def event_invoke_configs(self) -> dict[str, tuple[AsyncSpec, float]]:
        """Every function's event invoke config set through the Lambda API."""
        table = tables.event_invoke_configs
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table))
            return {
                row.name: (msgspec.convert(row.config, AsyncSpec), row.updated_at) for row in rows
            }

    def put_event_invoke_config(self, name: str, config: AsyncSpec, now: float) -> None:
        table = tables.event_invoke_configs
        values = {"config": msgspec.to_builtins(config), "updated_at": now}
        with self.engine.begin() as conn:
            done = conn.execute(table.update().where(table.c.name == name).values(**values))
            if done.rowcount == 0:
                conn.execute(table.insert().values(name=name, **values))

    def delete_event_invoke_config(self, name: str) -> bool:
        table = tables.event_invoke_configs
        with self.engine.begin() as conn:
            return bool(conn.execute(table.delete().where(table.c.name == name)).rowcount)

    def uid(self, name: str, uids: range) -> int:
        """The function's own sandbox uid: allocated from ``uids`` once, then kept."""
        table = tables.sandbox_uids
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(table.c.uid).where(table.c.name == name)).scalar()
            if found is not None:
                return int(found)
            taken = set(conn.execute(sa.select(table.c.uid)).scalars())
            uid = next_uid(taken, uids)
            conn.execute(table.insert().values(name=name, uid=uid))
        return uid

    def digests_in_use(self) -> set[str]:
        with self.engine.connect() as conn:
            latest = set(conn.execute(sa.select(tables.functions.c.digest)).scalars())
            return latest | Releases.digests(conn)


def next_uid(taken: set[int], uids: range) -> int:
    """The uid after the highest one taken (so a removed function's uid is not reused at
    once), wrapping to the lowest free one at the end of the range."""
    highest = max((uid for uid in taken if uid in uids), default=uids.start - 1)
    if highest + 1 in uids:
        return highest + 1
    free = next((uid for uid in uids if uid not in taken), None)
    if free is None:
        raise InvalidSpec(
            f"no sandbox uid left in {uids.start}-{uids.stop - 1}: every one is taken by a "
            "function; widen --sandbox-uids or remove functions"
        )
    return free


def _record(row: Any) -> FunctionRecord:
    return FunctionRecord(
        name=row["name"],
        version=row["version"],
        digest=row["digest"],
        spec=msgspec.convert(row["spec"], FunctionSpec),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
