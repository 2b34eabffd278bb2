"""What each function version used, per day (UTC): invocations, errors, billed milliseconds and
billed milliseconds times memory, as each REPORT line says them, the CPU time instances
measured and the rows predicted. Counted in memory as invocations end and written to the
registry's ``usage`` table at most every few seconds and when the platform stops (a ``kill -9``
loses at most those seconds of counts); ``rows`` adds what is not written yet, so a report is
exact."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from mlambda.registry.tables import usage as table

WRITE_EVERY_S = 5.0


@dataclasses.dataclass
class Usage:
    invocations: int = 0
    errors: int = 0
    billed_ms: int = 0
    mb_ms: int = 0  # memory_mb x billed_ms, summed
    cpu_ms: int = 0  # what the instances measured (rounded per invocation)
    predictions: int = 0  # rows a model answered; a handler's event counts one

    def add(self, other: Usage) -> None:
        self.invocations += other.invocations
        self.errors += other.errors
        self.billed_ms += other.billed_ms
        self.mb_ms += other.mb_ms
        self.cpu_ms += other.cpu_ms
        self.predictions += other.predictions


Key = tuple[str, str, str]  # function, version, day


def day_of(stamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(stamp))


class UsageLedger:
    def __init__(self, engine: sa.engine.Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self._pending: dict[Key, Usage] = collections.defaultdict(Usage)
        self._lock = threading.Lock()  # the pending counts: the loop adds, a thread writes
        self._writing = threading.Lock()  # one write at a time, in order
        self._written_at = clock()

    def add(
        self,
        function: str,
        version: str,
        memory_mb: int,
        billed_ms: int,
        error: bool,
        cpu_ms: float = 0.0,
        rows: int = 1,
    ) -> None:
        """One invocation's REPORT. A write is started in a thread when one is due."""
        now = self.clock()
        with self._lock:
            usage = self._pending[(function, version, day_of(now))]
            usage.invocations += 1
            usage.errors += int(error)
            usage.billed_ms += billed_ms
            usage.mb_ms += memory_mb * billed_ms
            usage.cpu_ms += round(cpu_ms)
            usage.predictions += rows
        if now - self._written_at >= WRITE_EVERY_S:
            self._written_at = now
            threading.Thread(target=self.write, name="usage-write", daemon=True).start()

    def write(self) -> None:
        """Add what was counted since the last write to the registry (idempotent when empty)."""
        with self._writing:
            with self._lock:
                pending, self._pending = self._pending, collections.defaultdict(Usage)
            if not pending:
                return
            try:
                with self.engine.begin() as conn:
                    for key, usage in pending.items():
                        _add_row(conn, key, usage)
            except Exception:
                with self._lock:  # kept for the next write
                    for key, usage in pending.items():
                        self._pending[key].add(usage)
                raise

    def rows(self, since_day: str) -> dict[Key, Usage]:
        """Usage from ``since_day`` on, per (function, version, day), written or not."""
        with self._writing:
            with self.engine.connect() as conn:
                found = {
                    (row.function, row.version, row.day): Usage(
                        row.invocations,
                        row.errors,
                        row.billed_ms,
                        row.mb_ms,
                        row.cpu_ms,
                        row.predictions,
                    )
                    for row in conn.execute(sa.select(table).where(table.c.day >= since_day))
                }
            with self._lock:
                for key, usage in self._pending.items():
                    if key[2] >= since_day:
                        found.setdefault(key, Usage()).add(usage)
        return found


def _add_row(conn: sa.Connection, key: Key, usage: Usage) -> None:
    function, version, day = key
    where = (table.c.function == function, table.c.version == version, table.c.day == day)
    done = conn.execute(
        table.update()
        .where(*where)
        .values(
            invocations=table.c.invocations + usage.invocations,
            errors=table.c.errors + usage.errors,
            billed_ms=table.c.billed_ms + usage.billed_ms,
            mb_ms=table.c.mb_ms + usage.mb_ms,
            cpu_ms=table.c.cpu_ms + usage.cpu_ms,
            predictions=table.c.predictions + usage.predictions,
        )
    )
    if done.rowcount == 0:
        conn.execute(
            table.insert().values(
                function=function, version=version, day=day, **dataclasses.asdict(usage)
            )
        )
