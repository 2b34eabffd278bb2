"""Where batch jobs are kept: the registry's ``jobs`` table (one row a job: its settings, state
and when) and ``job_items`` (one row an invocation to make: pending, done or failed, with a
mini-batch's result lines or the error). A job is planned whole before it runs, and each item is
marked done only once its result is written: a job resumed after ``kill -9`` redoes nothing
that was done.
"""

from __future__ import annotations

import builtins
import dataclasses
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from mlambda.errors import NotFound
from mlambda.events.job_plan import Item, JobSpec
from mlambda.registry.tables import job_items as items_table
from mlambda.registry.tables import jobs as table

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
JOB_STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
PENDING, DONE = "pending", "done"


@dataclasses.dataclass(frozen=True)
class Job:
    id: str
    spec: JobSpec
    state: str
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **msgspec.to_builtins(self.spec),
            "state": self.state,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "error": self.error or None,
        }


class JobStore:
    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine

    def create(self, spec: JobSpec, items: Sequence[Item]) -> Job:
        now = time.time()
        job = Job(str(uuid.uuid4()), spec, QUEUED, now, now)
        rows = [
            {"job": job.id, "item": i.id, "position": n, "key": i.key, "relative": i.relative,
             "first": i.first, "count": i.count, "state": PENDING}
            for n, i in enumerate(items)
        ]  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(
                table.insert().values(
                    id=job.id, spec=msgspec.to_builtins(spec), state=QUEUED,
                    created_at=now, updated_at=now, error="",
                )
            )  # fmt: skip
            for start in range(0, len(rows), 1000):
                conn.execute(items_table.insert(), rows[start : start + 1000])
        return job

    def get(self, id: str) -> Job:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == id)).first()
        if row is None:
            raise NotFound(f"no job {id!r} (mlambda jobs lists them)")
        return _job(row._mapping)

    def list(self, limit: int = 100, states: Iterable[str] | None = None) -> list[Job]:
        query = sa.select(table).order_by(table.c.created_at.desc()).limit(limit)
        if states is not None:
            query = query.where(table.c.state.in_(list(states)))
        with self.engine.connect() as conn:
            return [_job(row._mapping) for row in conn.execute(query)]

    def set_state(self, id: str, state: str, error: str = "") -> None:
        now = time.time()
        values: dict[str, Any] = {"state": state, "updated_at": now, "error": error}
        if state == RUNNING:
            values["started_at"] = now
        if state in FINISHED:
            values["finished_at"] = now
        with self.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == id).values(**values))

    def pending(self, id: str) -> builtins.list[Item]:
        query = (
            sa.select(items_table)
            .where(items_table.c.job == id, items_table.c.state == PENDING)
            .order_by(items_table.c.position)
        )
        with self.engine.connect() as conn:
            return [_item(row._mapping) for row in conn.execute(query)]

    def finish_items(self, id: str, finished: Sequence[tuple[str, bytes | None, str]]) -> None:
        """Items done (with a mini-batch's result lines) or failed (with their error), as
        (item, result, error), in one transaction."""
        rows = [
            {"_item": item, "state": "failed" if error else DONE, "result": result,
             "error": error[:2000]}
            for item, result, error in finished
        ]  # fmt: skip
        statement = (
            items_table.update()
            .where(items_table.c.job == id, items_table.c.item == sa.bindparam("_item"))
            .values(state=sa.bindparam("state"), result=sa.bindparam("result"),
                    error=sa.bindparam("error"))
        )  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(statement, rows)

    def counts(self, id: str) -> dict[str, int]:
        query = (
            sa.select(items_table.c.state, sa.func.count())
            .where(items_table.c.job == id)
            .group_by(items_table.c.state)
        )
        with self.engine.connect() as conn:
            found = {state: count for state, count in conn.execute(query)}
        return {"pending": found.get(PENDING, 0), "done": found.get(DONE, 0),
                "failed": found.get("failed", 0)}  # fmt: skip

    def outcomes(self, id: str) -> builtins.list[tuple[Item, str, str]]:
        """Every item with its state and error, in input order."""
        query = (
            sa.select(items_table).where(items_table.c.job == id).order_by(items_table.c.position)
        )
        with self.engine.connect() as conn:
            return [
                (_item(row._mapping), row.state, row.error or "") for row in conn.execute(query)
            ]

    def results(self, id: str, relative: str) -> builtins.list[bytes | None]:
        """A file's mini-batch results, in order (None: a mini-batch that failed)."""
        query = (
            sa.select(items_table.c.result)
            .where(items_table.c.job == id, items_table.c.relative == relative)
            .order_by(items_table.c.position)
        )
        with self.engine.connect() as conn:
            return [row.result for row in conn.execute(query)]


def _job(row: Any) -> Job:
    return Job(
        row["id"],
        msgspec.convert(row["spec"], JobSpec),
        row["state"],
        row["created_at"],
        row["updated_at"],
        row["started_at"],
        row["finished_at"],
        row["error"] or "",
    )


def _item(row: Any) -> Item:
    return Item(row["item"], row["key"], row["relative"], row["first"], row["count"])
