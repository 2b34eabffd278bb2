"""The embedded queue: a table in SQLite in the data dir (WAL), the default backend. Every call
commits before it returns, so an accepted event survives a kill -9 of the platform."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from mlambda.events.queue import (
    FINAL,
    IDEMPOTENCY_WINDOW_S,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Queue,
    Record,
)

T = TypeVar("T")
metadata = sa.MetaData()
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("function", sa.String, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("max_age_s", sa.Float, nullable=False),
    sa.Column("retry_delay_s", sa.Float, nullable=False),
    sa.Column("enqueued_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("visible_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("version", sa.String, nullable=False, default=""),
    sa.Column("result", sa.LargeBinary),
    sa.Column("error", sa.JSON),
    sa.Column("idempotency_key", sa.String),
    sa.Column("destination", sa.String, nullable=False, default=""),
    sa.Column("delivery", sa.String, nullable=False, default=""),
    sa.Column("delivery_error", sa.String, nullable=False, default=""),
    sa.Index("events_visible", "state", "visible_at"),
    sa.Index("events_function", "function", "state"),
    sa.Index("events_key", "function", "idempotency_key"),
    sa.Index("events_delivery", "delivery"),
)
RECORD_FIELDS = [f for f in Record.__dataclass_fields__]


class SqliteQueue(Queue):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(f"sqlite:///{path}")

        @sa.event.listens_for(self.engine, "connect")
        def _pragmas(connection: Any, _: Any) -> None:
            cursor = connection.cursor()
            # WAL: readers never wait for the writer; NORMAL: a commit is in the WAL (and so
            # survives the process) when it returns.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

        metadata.create_all(self.engine)

    async def _run(self, work: Callable[[sa.Connection], T]) -> T:
        def transaction() -> T:
            with self.engine.begin() as conn:
                return work(conn)

        return await asyncio.to_thread(transaction)

    async def put(self, record: Record) -> Record:
        def work(conn: sa.Connection) -> Record:
            if record.idempotency_key:
                row = conn.execute(
                    sa.select(events).where(
                        events.c.function == record.function,
                        events.c.idempotency_key == record.idempotency_key,
                        events.c.enqueued_at > record.enqueued_at - IDEMPOTENCY_WINDOW_S,
                    )
                ).first()
                if row is not None:
                    return _record(row._mapping)
            values = {name: getattr(record, name) for name in RECORD_FIELDS}
            conn.execute(events.insert().values(visible_at=record.enqueued_at, **values))
            return record

        return await self._run(work)

    async def lease(self, now: float, visibility_s: float, exclude: set[str]) -> Record | None:
        def work(conn: sa.Connection) -> Record | None:
            candidate = (
                sa.select(events.c.id)
                .where(events.c.state == QUEUED, events.c.visible_at <= now)
                .where(events.c.function.not_in(sorted(exclude)))
                .order_by(events.c.visible_at)
                .limit(1)
                .scalar_subquery()
            )
            row = conn.execute(
                events.update()
                .where(events.c.id == candidate, events.c.state == QUEUED)
                .values(
                    state=RUNNING,
                    attempts=events.c.attempts + 1,
                    lease_until=now + visibility_s,
                    updated_at=now,
                )
                .returning(*events.c)
            ).first()
            return _record(row._mapping) if row else None

        return await self._run(work)

    async def next_visible(self, now: float, exclude: set[str]) -> float | None:
        def work(conn: sa.Connection) -> float | None:
            return conn.execute(
                sa.select(sa.func.min(events.c.visible_at)).where(
                    events.c.state == QUEUED, events.c.function.not_in(sorted(exclude))
                )
            ).scalar()

        return await self._run(work)

    async def _update(self, id: str, **values: Any) -> None:
        await self._run(
            lambda conn: conn.execute(
                events.update().where(events.c.id == id, events.c.state == RUNNING).values(**values)
            )
        )

    async def ack(
        self, id: str, now: float, result: bytes, version: str, destination: str = ""
    ) -> None:
        await self._update(
            id,
            destination=destination,
            delivery="pending" if destination else "",
            state=SUCCEEDED,
            result=result,
            version=version,
            updated_at=now,
            finished_at=now,
            lease_until=None,
            error=None,
        )

    async def retry(self, id: str, now: float, delay_s: float, error: dict[str, Any]) -> None:
        await self._update(
            id,
            state=QUEUED,
            visible_at=now + delay_s,
            error=error,
            updated_at=now,
            lease_until=None,
        )

    async def release(self, id: str, now: float, delay_s: float) -> None:
        await self._update(
            id,
            state=QUEUED,
            visible_at=now + delay_s,
            attempts=events.c.attempts - 1,
            updated_at=now,
            lease_until=None,
        )

    async def end(
        self, id: str, now: float, state: str, error: dict[str, Any], destination: str = ""
    ) -> None:
        assert state in FINAL
        await self._update(
            id,
            state=state,
            error=error,
            updated_at=now,
            finished_at=now,
            lease_until=None,
            destination=destination,
            delivery="pending" if destination else "",
        )

    async def delivered(self, id: str, ok: bool, error: str = "") -> None:
        await self._run(
            lambda conn: conn.execute(
                events.update()
                .where(events.c.id == id)
                .values(delivery="delivered" if ok else "failed", delivery_error=error)
            )
        )

    async def pending_deliveries(self) -> list[Record]:
        def work(conn: sa.Connection) -> list[Record]:
            rows = conn.execute(sa.select(events).where(events.c.delivery == "pending"))
            return [_record(row._mapping) for row in rows]

        return await self._run(work)

    async def recover(self, now: float) -> int:
        def work(conn: sa.Connection) -> int:
            done = conn.execute(
                events.update()
                .where(events.c.state == RUNNING)
                .values(state=QUEUED, visible_at=now, lease_until=None, updated_at=now)
            )
            return int(done.rowcount)

        return await self._run(work)

    async def get(self, id: str) -> Record | None:
        def work(conn: sa.Connection) -> Record | None:
            row = conn.execute(sa.select(events).where(events.c.id == id)).first()
            return _record(row._mapping) if row else None

        return await self._run(work)

    async def list(self, function: str | None, state: str | None, limit: int) -> list[Record]:
        def work(conn: sa.Connection) -> list[Record]:
            query = sa.select(events).order_by(events.c.enqueued_at.desc()).limit(limit)
            if function is not None:
                query = query.where(events.c.function == function)
            if state is not None:
                query = query.where(events.c.state == state)
            return [_record(row._mapping) for row in conn.execute(query)]

        return await self._run(work)

    async def depth(self) -> dict[str, tuple[int, float]]:
        def work(conn: sa.Connection) -> dict[str, tuple[int, float]]:
            rows = conn.execute(
                sa.select(events.c.function, sa.func.count(), sa.func.min(events.c.enqueued_at))
                .where(events.c.state.in_([QUEUED, RUNNING]))
                .group_by(events.c.function)
            )
            return {name: (int(count), float(oldest)) for name, count, oldest in rows}

        return await self._run(work)

    async def close(self) -> None:
        self.engine.dispose()


def _record(row: Any) -> Record:
    values = {name: row[name] for name in RECORD_FIELDS}
    if isinstance(values["error"], str):
        values["error"] = json.loads(values["error"])
    return Record(**values)
