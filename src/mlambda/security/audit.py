"""The audit log: every control-plane call and every refused authentication, hash-chained.

Each entry carries the hash of the one before it (``prev``) and a hash of its own contents
(``hash``), so editing, reordering or deleting an entry inside the log breaks the chain where it
happened, as CloudTrail's log file integrity validation does. Cutting entries off the end leaves a
valid but shorter chain; the head file, which holds the last entry's seq and hash outside the
table, catches that. The chain has no secret: whoever can rewrite the table and the head file
together can forge a consistent log; the head file is meant to live where the database's users
cannot write.

The table is append-only by construction: nothing in this module updates or deletes a row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

GENESIS = "0" * 64

# Callers put request-derived values (reasons, paths) in detail: a bound keeps a flood of
# refused requests from filling the database with whatever an attacker sends.
MAX_DETAIL_BYTES = 4096

# How many entries AuditLog.verify holds in memory at once.
_VERIFY_CHUNK = 500

_metadata = sa.MetaData()

audit_log = sa.Table(
    "audit_log",
    _metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    # Double, not Float: MySQL's FLOAT is single precision and would change `at`, and the hash.
    sa.Column("at", sa.Double, nullable=False, index=True),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("prev", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One audit record. ``key_id`` is the API key's id ("" when none was presented), never
    a secret; ``prev`` is the previous entry's hash (GENESIS for seq 1)."""

    seq: int
    at: float
    key_id: str
    source: str
    action: str
    target: str
    outcome: str
    detail: dict[str, Any]
    prev: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """The entry as the HTTP API shows it (camelCase keys)."""
        return {
            "seq": self.seq,
            "at": self.at,
            "keyId": self.key_id,
            "source": self.source,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "detail": self.detail,
            "prev": self.prev,
            "hash": self.hash,
        }


@dataclasses.dataclass(frozen=True)
class Verification:
    """The result of walking a chain. ``first_bad`` is the seq of the first entry that does
    not verify (for a cut tail, the first missing one); None when ok, or when no entry is to
    blame (a missing head file). ``checked`` counts the entries read, the bad one included."""

    ok: bool
    checked: int
    first_bad: int | None
    reason: str


def canonical_json(value: Any) -> str:
    """The one JSON encoding hashes are computed over: sorted keys, no whitespace, floats as
    Python's repr, no NaN or infinity. Raises ValueError for anything that is not JSON-able."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"audit values must be JSON-able (str keys, finite numbers): {exc}"
        ) from exc


def entry_hash(
    prev: str,
    seq: int,
    at: float,
    key_id: str,
    source: str,
    action: str,
    target: str,
    outcome: str,
    detail: dict[str, Any],
) -> str:
    """sha256 hex of ``canonical_json`` over all fields but the hash, as one object keyed by
    the field names (``{"action":..,"at":..,"detail":..,"key_id":..,"outcome":..,"prev":..,
    "seq":..,"source":..,"target":..}``), UTF-8 encoded. Any change to any field, or to the
    order (seq and prev are inside), changes it."""
    fields = {
        "action": action,
        "at": float(at),
        "detail": detail,
        "key_id": key_id,
        "outcome": outcome,
        "prev": prev,
        "seq": int(seq),
        "source": source,
        "target": target,
    }
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()


def bounded_detail(detail: dict[str, Any] | None) -> dict[str, Any]:
    """``detail`` as it will read back from the database (a JSON round trip: tuples become
    lists, int keys strings), refused with ValueError when over MAX_DETAIL_BYTES of JSON."""
    try:
        # A plain dump first: canonical_json's sorted keys cannot compare int keys with str.
        parsed = json.loads(json.dumps(detail or {}, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit detail must be JSON-able (finite numbers): {exc}") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"audit detail must be a JSON object, got {type(detail).__name__}")
    size = len(canonical_json(parsed).encode())
    if size > MAX_DETAIL_BYTES:
        raise ValueError(
            f"audit detail is {size} bytes of JSON, over the {MAX_DETAIL_BYTES}-byte limit: "
            "truncate request-derived values before recording"
        )
    return parsed


def verify(entries: Iterable[Entry], head: tuple[int, str] | None = None) -> Verification:
    """Pure: walk the chain in seq order from 1 (``entries`` must come oldest first) and
    stop at the first entry that does not verify. ``head`` (seq, hash) is the last entry as
    recorded outside the table (see AuditLog); a log whose tail was cut is caught by it.
    Entries after the head are accepted: a crash between commit and head write leaves them."""
    expected, prev, checked = 1, GENESIS, 0
    for entry in entries:
        checked += 1
        reason = _chain_fault(entry, expected, prev) or _head_fault(entry, head)
        if reason:
            return Verification(False, checked, min(entry.seq, expected), reason)
        expected, prev = entry.seq + 1, entry.hash
    last = expected - 1
    if head is not None and last < head[0]:
        reason = (
            f"the log ends at entry {last} but the head file says {head[0]}: "
            "entries were deleted from its end"
        )
        return Verification(False, checked, last + 1, reason)
    return Verification(True, checked, None, f"all {checked} entries verify")


def _chain_fault(entry: Entry, expected: int, prev: str) -> str:
    """Why ``entry`` cannot stand at position ``expected`` after hash ``prev`` ("" if it can)."""
    if entry.seq > expected:
        gap = entry.seq - expected
        missing = f"entry {expected} is" if gap == 1 else f"entries {expected}-{entry.seq - 1} are"
        if expected == 1:
            return f"{missing} missing: the log starts at entry {entry.seq}"
        return f"{missing} missing: the log goes from {expected - 1} to {entry.seq}"
    if entry.seq < expected:
        return f"entry {entry.seq} is out of order: it comes after entry {expected - 1}"
    if _contents_hash(entry) != entry.hash:
        return f"entry {entry.seq} was edited: its hash does not match its contents"
    if entry.prev != prev:
        if entry.seq == 1:
            return "entry 1 does not start the chain (its prev hash is not GENESIS)"
        return f"entry {entry.seq} does not follow entry {entry.seq - 1} (its prev hash differs)"
    return ""


def _contents_hash(entry: Entry) -> str:
    return entry_hash(
        entry.prev,
        entry.seq,
        entry.at,
        entry.key_id,
        entry.source,
        entry.action,
        entry.target,
        entry.outcome,
        entry.detail,
    )


def _head_fault(entry: Entry, head: tuple[int, str] | None) -> str:
    if head is None or entry.seq != head[0] or entry.hash == head[1]:
        return ""
    return (
        f"entry {entry.seq} differs from the head file's record of it: "
        "the log was rewritten from there, or the head file belongs to another log"
    )


class AuditLog:
    """The audit log in the ``audit_log`` table of ``engine``.

    Appends from threads of one process are serialised by a lock; two processes appending
    at once cannot fork the chain either (seq is the primary key, so the second insert of a
    seq fails) but the loser's call raises the database's integrity error.
    """

    def __init__(self, engine: sa.engine.Engine, head_file: Path | None = None) -> None:
        """Creates its table if missing. ``head_file``, when given, holds 'seq hash' of the
        last entry, rewritten atomically (mode 0600) after each append, so deleting entries
        from the end of the table is detected too. The engine stays the caller's."""
        self.engine = engine
        self.head_file = head_file
        self._owns_engine = False
        self._lock = threading.Lock()
        _metadata.create_all(engine)

    @classmethod
    def sqlite(cls, path: Path, head_file: Path | None = None) -> AuditLog:
        """An audit log on its own SQLite file; this one's close() disposes of the engine."""
        path.parent.mkdir(parents=True, exist_ok=True)
        log = cls(sa.create_engine(f"sqlite:///{path}"), head_file)
        log._owns_engine = True
        return log

    def close(self) -> None:
        """Dispose of the engine if this log created it (``AuditLog.sqlite``); a no-op for
        an engine passed in, which its owner (the registry, the platform) closes."""
        if self._owns_engine:
            self.engine.dispose()

    def record(
        self,
        action: str,
        *,
        target: str = "",
        outcome: str = "ok",
        key_id: str = "",
        source: str = "",
        detail: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> Entry:
        """Append one entry in one transaction: read the last hash, chain, insert; then
        rewrite the head file. Blocking: the gateway calls it via asyncio.to_thread.
        Raises ValueError for a detail that is not JSON-able or over MAX_DETAIL_BYTES."""
        at = time.time() if now is None else float(now)
        fields = (key_id, source, action, target, outcome, bounded_detail(detail))
        with self._lock:
            with self.engine.begin() as conn:
                last = conn.execute(
                    sa.select(audit_log.c.seq, audit_log.c.hash)
                    .order_by(audit_log.c.seq.desc())
                    .limit(1)
                ).first()
                seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
                entry = Entry(seq, at, *fields, prev=prev, hash=entry_hash(prev, seq, at, *fields))
                conn.execute(audit_log.insert().values(dataclasses.asdict(entry)))
            if self.head_file is not None:
                write_head(self.head_file, entry.seq, entry.hash)
        return entry

    def entries(
        self,
        *,
        since: float | None = None,
        action: str | None = None,
        limit: int = 1000,
        after_seq: int = 0,
    ) -> list[Entry]:
        """Up to ``limit`` entries with seq > ``after_seq``, at >= ``since`` and the given
        ``action``, oldest first. Page through with after_seq = the last seq seen."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        query = sa.select(audit_log).where(audit_log.c.seq > after_seq)
        if since is not None:
            query = query.where(audit_log.c.at >= since)
        if action is not None:
            query = query.where(audit_log.c.action == action)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(audit_log.c.seq).limit(limit))
            return [Entry(**row._mapping) for row in rows]

    def verify(self) -> Verification:
        """Walk the whole table, a chunk at a time, through ``verify`` with the head file."""
        # The head is read before the table: appends made during the walk only add entries
        # after it, whereas reading it last could name an entry the walk never saw.
        try:
            head = read_head(self.head_file) if self.head_file else None
        except ValueError as exc:
            return Verification(False, 0, None, str(exc))
        if self.head_file is not None and head is None and self.entries(limit=1):
            reason = (
                f"the head file {self.head_file} is missing but the log has entries: "
                "it was deleted, or the log was written without it"
            )
            return Verification(False, 0, None, reason)
        return verify(self._stream(), head)

    def _stream(self) -> Iterator[Entry]:
        after = 0
        while chunk := self.entries(after_seq=after, limit=_VERIFY_CHUNK):
            yield from chunk
            after = chunk[-1].seq


def write_head(path: Path, seq: int, hash: str) -> None:
    """Replace ``path`` with 'seq hash' atomically: a reader sees the old head or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600 in the same directory, so os.replace is a rename.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(f"{seq} {hash}\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_head(path: Path) -> tuple[int, str] | None:
    """The (seq, hash) in ``path``; None if it does not exist. ValueError if unreadable."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or len(parts[1]) != 64:
        raise ValueError(f"the head file {path} does not hold 'seq hash': got {text[:80]!r}")
    return int(parts[0]), parts[1]
