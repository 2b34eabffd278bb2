"""The names of the platform's queues that were made (SQS's CreateQueue), kept in the registry:
a made queue exists while it is empty, as an SQS queue does."""

from __future__ import annotations

import time

import sqlalchemy as sa

from mlambda.registry.tables import platform_queues as table


class QueueNames:
    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine

    def create(self, name: str) -> float:
        """Make the queue (nothing when it was made before); when it was made."""
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(table.c.created_at).where(table.c.name == name))
            created = found.scalar()
            if created is None:
                created = time.time()
                conn.execute(table.insert().values(name=name, created_at=created))
        return float(created)

    def made(self, name: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(table.c.name).where(table.c.name == name))
            return found.first() is not None

    def created(self) -> dict[str, float]:
        with self.engine.connect() as conn:
            return {row.name: row.created_at for row in conn.execute(sa.select(table))}

    def delete(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.name == name))
