"""The embedded queue: a table in SQLite in the data dir (WAL), the default backend. Every call
commits before it returns, so an accepted event survives a kill -9 of the platform.

SQLite only, so it speaks SQLite through the standard library: one connection, used by the
queue's own thread, so writers never contend for the database lock (whose busy handler sleeps).
Calls made while a transaction is being written are committed together in the next one (group
commit), each in its own savepoint: under load, one commit carries many accepts and acks, and
each caller still returns only once its own work is committed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

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
COLUMNS = list(Record.__dataclass_fields__)
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    payload BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    max_age_s REAL NOT NULL,
    retry_delay_s REAL NOT NULL,
    enqueued_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    version TEXT NOT NULL,
    result BLOB,
    error TEXT,
    idempotency_key TEXT,
    destination TEXT NOT NULL,
    delivery TEXT NOT NULL,
    delivery_error TEXT NOT NULL,
    trace TEXT NOT NULL DEFAULT '',
    visible_at REAL NOT NULL,
    lease_until REAL
);
DROP INDEX IF EXISTS events_visible;
CREATE INDEX IF NOT EXISTS events_ready ON events (function, state, visible_at);
CREATE INDEX IF NOT EXISTS events_lease ON events (state, lease_until);
CREATE INDEX IF NOT EXISTS events_function ON events (function, state, enqueued_at);
CREATE INDEX IF NOT EXISTS events_key ON events (function, idempotency_key);
CREATE INDEX IF NOT EXISTS events_delivery ON events (delivery);
CREATE INDEX IF NOT EXISTS events_enqueued ON events (enqueued_at);
"""
SELECT = f"SELECT {', '.join(COLUMNS)} FROM events"


class SqliteQueue(Queue):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="mlambda-queue")
        self._conn = self._thread.submit(self._connect, path).result()
        self._pending: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        # The functions that may have events to lease: those with unfinished events at open,
        # and every function an event is put for since.
        self._functions: set[str] = self._thread.submit(self._unfinished).result()

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # WAL: readers never wait for the writer; NORMAL: a commit is in the WAL, and so
        # survives the process, when it returns (an OS crash may lose the last ones).
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.executescript(SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
        if "trace" not in columns:  # a queue made before events carried their trace
            conn.execute("ALTER TABLE events ADD COLUMN trace TEXT NOT NULL DEFAULT ''")
        return conn

    def _unfinished(self) -> set[str]:
        rows = self._conn.execute(
            "SELECT DISTINCT function FROM events WHERE state IN (?, ?)", (QUEUED, RUNNING)
        )
        return {function for (function,) in rows}

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` in the next transaction on the queue's thread; returns once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((work, future))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write())
        return await future

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                outcomes = await loop.run_in_executor(self._thread, self._commit, batch)
            except BaseException as exc:  # the commit itself failed: nobody's work holds
                outcomes = [(False, exc)] * len(batch)
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _commit(
        self, batch: list[tuple[Callable[[sqlite3.Connection], Any], Any]]
    ) -> list[tuple[bool, Any]]:
        conn = self._conn
        outcomes: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for work, _ in batch:
                conn.execute("SAVEPOINT one")
                try:
                    outcomes.append((True, work(conn)))
                except Exception as exc:
                    conn.execute("ROLLBACK TO one")
                    outcomes.append((False, exc))
                conn.execute("RELEASE one")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return outcomes

    async def put(self, record: Record) -> Record:
        def work(conn: sqlite3.Connection) -> Record:
            if record.idempotency_key:
                row = conn.execute(
                    f"{SELECT} WHERE function = ? AND idempotency_key = ? AND enqueued_at > ?",
                    (
                        record.function,
                        record.idempotency_key,
                        record.enqueued_at - IDEMPOTENCY_WINDOW_S,
                    ),
                ).fetchone()
                if row is not None:
                    return _record(row)
            values = [_column(getattr(record, name)) for name in COLUMNS]
            conn.execute(
                f"INSERT INTO events ({', '.join(COLUMNS)}, visible_at) "
                f"VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",
                (*values, record.enqueued_at),
            )
            return record

        stored = await self._run(work)
        self._functions.add(record.function)  # here, on the loop, where leases read the set
        return stored

    async def lease_many(
        self, now: float, visibility_s: float, room: Callable[[str], int], limit: int
    ) -> list[Record]:
        """One transaction: the oldest visible events of each function with room (asked on the
        event loop), oldest first across them. Each function's are read by its own index range,
        so a full function's backlog is never scanned."""
        rooms = {f: n for f in sorted(self._functions) if (n := min(room(f), limit)) > 0}
        if not rooms:
            return []

        def work(conn: sqlite3.Connection) -> list[Record]:
            # A lease past its visibility timeout (its holder let it go) is queued again.
            conn.execute(
                "UPDATE events SET state = ?, visible_at = lease_until, lease_until = NULL "
                "WHERE state = ? AND lease_until <= ?",
                (QUEUED, RUNNING, now),
            )
            rows = [
                row
                for function, n in rooms.items()
                for row in conn.execute(
                    "SELECT visible_at, id FROM events WHERE function = ? AND state = ? AND "
                    "visible_at <= ? ORDER BY visible_at LIMIT ?",
                    (function, QUEUED, now, n),
                )
            ]
            chosen = [id for _, id in sorted(rows)[:limit]]
            if not chosen:
                return []
            leased = conn.execute(
                f"UPDATE events SET state = ?, attempts = attempts + 1, lease_until = ?, "
                f"updated_at = ? WHERE id IN ({', '.join('?' * len(chosen))}) AND +state = ? "
                f"RETURNING {', '.join(COLUMNS)}",
                (RUNNING, now + visibility_s, now, *chosen, QUEUED),
            ).fetchall()
            return sorted((_record(row) for row in leased), key=lambda r: r.enqueued_at)

        return await self._run(work)

    async def next_visible(self, now: float, exclude: set[str]) -> float | None:
        functions = sorted(self._functions - exclude)

        def work(conn: sqlite3.Connection) -> float | None:
            due = [
                row[0]
                for function in functions
                for row in conn.execute(
                    "SELECT min(visible_at) FROM events WHERE function = ? AND state = ?",
                    (function, QUEUED),
                )
                if row[0] is not None
            ]
            return min(due, default=None)

        return await self._run(work)

    async def _update(self, id: str, *, running_only: bool = True, **values: Any) -> None:
        """Set columns of one event (of a running one: the lease holder's)."""
        assignments = ", ".join(f"{name} = ?" for name in values)
        parameters = [_column(v) for v in values.values()]
        # "+state": the lookup is by id; an index on state would scan every queued event.
        where = "id = ?" + (" AND +state = 'running'" if running_only else "")
        await self._run(
            lambda conn: conn.execute(
                f"UPDATE events SET {assignments} WHERE {where}", (*parameters, id)
            )
        )

    async def ack(
        self, id: str, now: float, result: bytes, version: str, destination: str = ""
    ) -> None:
        await self._update(
            id,
            state=SUCCEEDED,
            result=result,
            version=version,
            updated_at=now,
            finished_at=now,
            lease_until=None,
            error=None,
            destination=destination,
            delivery="pending" if destination else "",
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
        await self._run(
            lambda conn: conn.execute(
                "UPDATE events SET state = ?, visible_at = ?, attempts = attempts - 1, "
                "updated_at = ?, lease_until = NULL WHERE id = ? AND +state = ?",
                (QUEUED, now + delay_s, now, id, RUNNING),
            )
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
        await self._update(
            id, running_only=False, delivery="delivered" if ok else "failed", delivery_error=error
        )

    async def pending_deliveries(self) -> list[Record]:
        return await self._select("WHERE delivery = 'pending'", ())

    async def recover(self, now: float) -> int:
        def work(conn: sqlite3.Connection) -> int:
            done = conn.execute(
                "UPDATE events SET state = ?, visible_at = ?, lease_until = NULL, updated_at = ? "
                "WHERE state = ?",
                (QUEUED, now, now, RUNNING),
            )
            return done.rowcount

        return await self._run(work)

    async def _select(self, where: str, parameters: tuple[Any, ...]) -> list[Record]:
        return await self._run(
            lambda conn: [_record(row) for row in conn.execute(f"{SELECT} {where}", parameters)]
        )

    async def get(self, id: str) -> Record | None:
        found = await self._select("WHERE id = ?", (id,))
        return found[0] if found else None

    async def list(self, function: str | None, state: str | None, limit: int) -> list[Record]:
        clauses, parameters = [], []
        if function is not None:
            clauses.append("function = ?")
            parameters.append(function)
        if state is not None:
            clauses.append("state = ?")
            parameters.append(state)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return await self._select(
            f"{where} ORDER BY enqueued_at DESC LIMIT ?", (*parameters, limit)
        )

    async def depth(self) -> dict[str, tuple[int, float]]:
        def work(conn: sqlite3.Connection) -> dict[str, tuple[int, float]]:
            rows = conn.execute(
                "SELECT function, count(*), min(enqueued_at) FROM events "
                "WHERE state IN (?, ?) GROUP BY function",
                (QUEUED, RUNNING),
            )
            return {name: (int(count), float(oldest)) for name, count, oldest in rows}

        return await self._run(work)

    async def close(self) -> None:
        self._thread.submit(self._conn.close).result()
        self._thread.shutdown(wait=True)


def _column(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict) else value


def _record(row: tuple[Any, ...]) -> Record:
    values = dict(zip(COLUMNS, row, strict=True))
    if values["error"] is not None:
        values["error"] = json.loads(values["error"])
    return Record(**values)
