"""The audit log on a temporary SQLite file: chaining, tamper detection, filters, the head file."""

from __future__ import annotations

import dataclasses
import hashlib
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mlambda.security import audit
from mlambda.security.audit import GENESIS, AuditLog, Entry, Verification, entry_hash, verify

ACTIONS = ["deploy", "keys.create", "auth.refused", "deploy", "delete"]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.engine.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/a.db")
    yield engine
    engine.dispose()


@pytest.fixture
def head_file(tmp_path: Path) -> Path:
    return tmp_path / "audit.head"


@pytest.fixture
def log(engine: sa.engine.Engine, head_file: Path) -> AuditLog:
    return AuditLog(engine, head_file)


def _fill(log: AuditLog, count: int = 5) -> list[Entry]:
    return [
        log.record(ACTIONS[i % len(ACTIONS)], target=f"fn{i}", key_id="k1", now=100.0 + i)
        for i in range(count)
    ]


def _sql(engine: sa.engine.Engine, statement: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(statement))


def test_appending_numbers_entries_from_one_and_chains_them_from_genesis(log):
    entries = _fill(log)
    assert [entry.seq for entry in entries] == [1, 2, 3, 4, 5]
    assert [entry.prev for entry in entries] == [GENESIS] + [e.hash for e in entries[:-1]]
    assert log.entries() == entries


def test_an_untouched_log_verifies(log):
    _fill(log)
    assert log.verify() == Verification(True, 5, None, "all 5 entries verify")


def test_an_empty_log_verifies(log):
    assert log.verify().ok


def test_a_reopened_log_continues_the_chain(engine, head_file, log):
    first = _fill(log, 2)
    entry = AuditLog(engine, head_file).record("deploy", now=200.0)
    assert (entry.seq, entry.prev) == (3, first[-1].hash)
    assert log.verify().ok


@pytest.mark.parametrize(
    ("tamper", "first_bad", "reason"),
    [
        (
            "UPDATE audit_log SET outcome = 'denied' WHERE seq = 3",
            3,
            "entry 3 was edited: its hash does not match its contents",
        ),
        (
            "UPDATE audit_log SET at = at + 0.001 WHERE seq = 2",
            2,
            "entry 2 was edited: its hash does not match its contents",
        ),
        (
            "UPDATE audit_log SET detail = '{\"status\": 500}' WHERE seq = 4",
            4,
            "entry 4 was edited: its hash does not match its contents",
        ),
        (
            "DELETE FROM audit_log WHERE seq = 3",
            3,
            "entry 3 is missing: the log goes from 2 to 4",
        ),
        (
            "DELETE FROM audit_log WHERE seq IN (2, 3)",
            2,
            "entries 2-3 are missing: the log goes from 1 to 4",
        ),
        (
            "DELETE FROM audit_log WHERE seq >= 4",
            4,
            "the log ends at entry 3 but the head file says 5: entries were deleted from its end",
        ),
    ],
)
def test_tampering_with_the_table_is_named_at_the_first_bad_entry(
    engine, log, tamper, first_bad, reason
):
    _fill(log)
    _sql(engine, tamper)
    result = log.verify()
    assert (result.ok, result.first_bad, result.reason) == (False, first_bad, reason)


def test_deleting_the_last_entries_goes_unnoticed_without_a_head_file(engine):
    log = AuditLog(engine)
    _fill(log)
    _sql(engine, "DELETE FROM audit_log WHERE seq >= 4")
    assert log.verify() == Verification(True, 3, None, "all 3 entries verify")


def test_swapping_two_entries_contents_is_caught(engine, log):
    _fill(log)
    columns = ["at", "key_id", "source", "action", "target", "outcome", "detail", "prev", "hash"]
    swapped = ", ".join(
        f"{c} = (SELECT {c} FROM copy WHERE copy.seq = 5 - audit_log.seq)" for c in columns
    )
    # From a copy: SQLite updates row by row, so row 3 would read the already updated row 2.
    _sql(engine, "CREATE TABLE copy AS SELECT * FROM audit_log WHERE seq IN (2, 3)")
    _sql(engine, f"UPDATE audit_log SET {swapped} WHERE seq IN (2, 3)")
    assert [entry.target for entry in log.entries()] == ["fn0", "fn2", "fn1", "fn3", "fn4"]
    assert log.verify().first_bad == 2


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(engine, log):
    entries = _fill(log)
    forged = dataclasses.replace(entries[2], outcome="denied")
    _sql(
        engine,
        f"UPDATE audit_log SET outcome = 'denied', hash = '{_rehash(forged).hash}' WHERE seq = 3",
    )
    result = log.verify()
    assert (result.first_bad, result.reason) == (
        4,
        "entry 4 does not follow entry 3 (its prev hash differs)",
    )


def test_a_rewritten_tail_disagrees_with_the_head_file(engine, log):
    entries = _fill(log, 3)
    forged = _rehash(dataclasses.replace(entries[2], outcome="denied"))
    _sql(engine, f"UPDATE audit_log SET outcome = 'denied', hash = '{forged.hash}' WHERE seq = 3")
    assert log.verify().reason.startswith("entry 3 differs from the head file's record of it")


def test_a_missing_head_file_fails_a_log_with_entries(log, head_file):
    _fill(log, 2)
    head_file.unlink()
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, None)
    assert "is missing but the log has entries" in result.reason


def test_an_unreadable_head_file_fails_verification(log, head_file):
    _fill(log, 2)
    head_file.write_text("garbage\n")
    assert "does not hold 'seq hash'" in log.verify().reason


def test_the_head_file_holds_the_last_seq_and_hash_readable_by_its_owner_only(log, head_file):
    last = _fill(log, 3)[-1]
    assert head_file.read_text() == f"3 {last.hash}\n"
    assert stat.S_IMODE(head_file.stat().st_mode) == 0o600
    assert [path.name for path in head_file.parent.iterdir() if path.suffix == ".tmp"] == []


def test_verification_streams_the_table_in_chunks(log, monkeypatch):
    _fill(log, 7)
    monkeypatch.setattr(audit, "_VERIFY_CHUNK", 2)
    assert log.verify() == Verification(True, 7, None, "all 7 entries verify")


@pytest.mark.parametrize(
    ("query", "seqs"),
    [
        ({}, [1, 2, 3, 4, 5]),
        ({"since": 102.0}, [3, 4, 5]),
        ({"action": "deploy"}, [1, 4]),
        ({"limit": 2}, [1, 2]),
        ({"limit": 0}, []),
        ({"after_seq": 3}, [4, 5]),
        ({"after_seq": 1, "action": "deploy"}, [4]),
        ({"since": 101.0, "limit": 2, "after_seq": 2}, [3, 4]),
    ],
)
def test_entries_filter_oldest_first(log, query, seqs):
    _fill(log)
    assert [entry.seq for entry in log.entries(**query)] == seqs


def test_a_negative_limit_is_refused(log):
    with pytest.raises(ValueError, match="limit must be 0 or more, got -1"):
        log.entries(limit=-1)


@pytest.mark.parametrize(
    ("detail", "message"),
    [
        ({"reason": "x" * 4096}, "over the 4096-byte limit"),
        ({"when": object()}, "must be JSON-able"),
        ({"ratio": float("nan")}, "must be JSON-able"),
    ],
)
def test_a_detail_too_big_or_not_json_is_refused_and_nothing_is_recorded(log, detail, message):
    with pytest.raises(ValueError, match=message):
        log.record("auth.refused", detail=detail)
    assert log.entries() == []


def test_detail_is_stored_as_it_reads_back(log):
    entry = log.record("deploy", detail={"ids": (1, 2), 3: "three"}, now=1.0)
    assert entry.detail == {"ids": [1, 2], "3": "three"}
    assert log.entries() == [entry]
    assert log.verify().ok


def test_concurrent_appenders_keep_one_gapless_chain(log):
    threads = [threading.Thread(target=_fill, args=(log, 10)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [entry.seq for entry in log.entries()] == list(range(1, 41))
    assert log.verify().ok


def test_closing_a_log_leaves_a_borrowed_engine_usable(engine, log):
    log.close()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar() == 0


def test_an_owned_sqlite_log_works_and_closes(tmp_path):
    log = AuditLog.sqlite(tmp_path / "data" / "audit.sqlite3")
    log.record("deploy")
    assert log.verify().ok
    log.close()


def test_an_entry_hash_is_sha256_of_the_documented_canonical_json():
    canonical = (
        '{"action":"deploy","at":1700000000.25,"detail":{"code":201,"reason":"new"},'
        f'"key_id":"ak_1","outcome":"ok","prev":"{GENESIS}","seq":1,'
        '"source":"10.0.0.7","target":"echo"}'
    )
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    computed = entry_hash(
        GENESIS,
        1,
        1700000000.25,
        "ak_1",
        "10.0.0.7",
        "deploy",
        "echo",
        "ok",
        {"reason": "new", "code": 201},
    )
    assert computed == expected


def test_to_dict_uses_the_http_apis_camel_case_keys():
    entry = _chain(1)[0]
    assert list(entry.to_dict()) == [
        "seq",
        "at",
        "keyId",
        "source",
        "action",
        "target",
        "outcome",
        "detail",
        "prev",
        "hash",
    ]
    assert entry.to_dict()["keyId"] == entry.key_id


def _rehash(entry: Entry, prev: str | None = None) -> Entry:
    """``entry`` with ``prev`` (if given) and a hash that matches its contents."""
    entry = dataclasses.replace(entry, prev=entry.prev if prev is None else prev)
    fields = dataclasses.astuple(entry)[:8]
    return dataclasses.replace(entry, hash=entry_hash(entry.prev, *fields))


def _chain(count: int) -> list[Entry]:
    entries: list[Entry] = []
    for seq in range(1, count + 1):
        prev = entries[-1].hash if entries else GENESIS
        blank = Entry(seq, 10.0 * seq, "k1", "127.0.0.1", "deploy", f"fn{seq}", "ok", {}, prev, "")
        entries.append(_rehash(blank))
    return entries


def _edited(entries: list[Entry], index: int, **changes) -> list[Entry]:
    return [*entries[:index], dataclasses.replace(entries[index], **changes), *entries[index + 1 :]]


CHAIN = _chain(4)

VERIFY_CASES = [
    ("empty", [], None, Verification(True, 0, None, "all 0 entries verify")),
    ("intact", CHAIN, None, Verification(True, 4, None, "all 4 entries verify")),
    (
        "head at the end",
        CHAIN,
        (4, CHAIN[3].hash),
        Verification(True, 4, None, "all 4 entries verify"),
    ),
    (
        "head before the end",
        CHAIN,
        (2, CHAIN[1].hash),
        Verification(True, 4, None, "all 4 entries verify"),
    ),
    (
        "edited",
        _edited(CHAIN, 1, target="other"),
        None,
        Verification(False, 2, 2, "entry 2 was edited: its hash does not match its contents"),
    ),
    (
        "gap",
        [CHAIN[0], CHAIN[2], CHAIN[3]],
        None,
        Verification(False, 2, 2, "entry 2 is missing: the log goes from 1 to 3"),
    ),
    (
        "starts late",
        CHAIN[1:],
        None,
        Verification(False, 1, 1, "entry 1 is missing: the log starts at entry 2"),
    ),
    (
        "out of order",
        [CHAIN[0], CHAIN[1], CHAIN[1]],
        None,
        Verification(False, 3, 2, "entry 2 is out of order: it comes after entry 2"),
    ),
    (
        "not from genesis",
        [_rehash(CHAIN[0], prev="f" * 64)],
        None,
        Verification(
            False, 1, 1, "entry 1 does not start the chain (its prev hash is not GENESIS)"
        ),
    ),
    (
        "relinked",
        [CHAIN[0], _rehash(CHAIN[1], prev="f" * 64), *CHAIN[2:]],
        None,
        Verification(False, 2, 2, "entry 2 does not follow entry 1 (its prev hash differs)"),
    ),
    (
        "tail cut",
        CHAIN[:2],
        (4, CHAIN[3].hash),
        Verification(
            False,
            2,
            3,
            "the log ends at entry 2 but the head file says 4: entries were deleted from its end",
        ),
    ),
    (
        "head disagrees",
        CHAIN,
        (3, "e" * 64),
        Verification(
            False,
            3,
            3,
            "entry 3 differs from the head file's record of it: "
            "the log was rewritten from there, or the head file belongs to another log",
        ),
    ),
]


@pytest.mark.parametrize(
    ("entries", "head", "expected"),
    [case[1:] for case in VERIFY_CASES],
    ids=[case[0] for case in VERIFY_CASES],
)
def test_verify_walks_the_chain_and_stops_at_the_first_fault(entries, head, expected):
    assert verify(iter(entries), head) == expected
