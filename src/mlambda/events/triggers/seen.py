"""What an object trigger that watches has seen, kept in the registry (``objects_seen``): a
restart compares its first listing with it, so that objects seen before fire no event again and
objects that came (or went) while the platform was down fire theirs."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from mlambda.registry.tables import objects_seen as table
from mlambda.registry.tables import trigger_checkpoints as checkpoints

# The checkpoint of an object trigger that has taken its first listing (what was there before
# the trigger existed fires nothing, as on S3, where notifications start when configured).
LISTED = "listed"


@dataclasses.dataclass(frozen=True)
class Seen:
    etag: str
    stamp: str  # size and modification time: unchanged, a file's ETag needs no reading


class SeenObjects:
    def __init__(self, engine: sa.engine.Engine, trigger: str) -> None:
        self.engine = engine
        self.trigger = trigger

    def load(self) -> dict[str, Seen] | None:
        """Every object seen, by key; None before the trigger's first listing."""
        with self.engine.connect() as conn:
            listed = conn.execute(
                sa.select(checkpoints.c.position).where(checkpoints.c.trigger == self.trigger)
            ).scalar()
            if listed is None:
                return None
            rows = conn.execute(
                sa.select(table.c.key, table.c.etag, table.c.stamp).where(
                    table.c.trigger == self.trigger
                )
            )
            return {row.key: Seen(row.etag, row.stamp) for row in rows}

    def first_listing(self, objects: dict[str, Seen], now: float) -> None:
        """What the first listing found: seen, and fired for nothing."""
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.trigger == self.trigger))
            self._insert(conn, objects)
            conn.execute(checkpoints.delete().where(checkpoints.c.trigger == self.trigger))
            conn.execute(
                checkpoints.insert().values(trigger=self.trigger, position=LISTED, updated_at=now)
            )

    def update(self, added: dict[str, Seen], removed: list[str]) -> None:
        """Objects whose events are in the asynchronous queue (added: new or changed)."""
        with self.engine.begin() as conn:
            keys = [*added, *removed]
            for start in range(0, len(keys), 500):
                conn.execute(
                    table.delete().where(
                        table.c.trigger == self.trigger, table.c.key.in_(keys[start : start + 500])
                    )
                )
            self._insert(conn, added)

    def _insert(self, conn: sa.Connection, objects: dict[str, Seen]) -> None:
        rows = [
            {"trigger": self.trigger, "key": key, "etag": seen.etag, "stamp": seen.stamp}
            for key, seen in objects.items()
        ]
        if rows:
            conn.execute(table.insert(), rows)
