"""The registry on a temporary SQLite file: create, no-op redeploys, replace, delete, reopen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlambda.registry import LATEST, FunctionRecord, Registry
from mlambda.spec import FunctionSpec

DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "b" * 64


def _spec(name: str = "echo", **fields) -> FunctionSpec:
    return FunctionSpec(name=name, handler="app:handler", **fields)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "registry.sqlite3"


@pytest.fixture
def registry(db_path: Path) -> Iterator[Registry]:
    registry = Registry.sqlite(db_path)
    yield registry
    registry.close()


def test_a_missing_function_is_none(registry):
    assert registry.get("echo") is None
    assert registry.list() == []


def test_put_creates_the_latest_version(registry):
    record, changed = registry.put(_spec(), DIGEST, now=100.0)
    assert changed is True
    assert record == FunctionRecord("echo", LATEST, DIGEST, _spec(), 100.0, 100.0)
    assert registry.get("echo") == record


def test_putting_the_same_digest_and_spec_is_unchanged(registry):
    first, _ = registry.put(_spec(), DIGEST, now=100.0)
    record, changed = registry.put(_spec(), DIGEST, now=200.0)
    assert changed is False
    assert record == first
    assert registry.get("echo").updated_at == 100.0


def test_a_new_digest_replaces_and_keeps_created_at(registry):
    registry.put(_spec(), DIGEST, now=100.0)
    record, changed = registry.put(_spec(), OTHER_DIGEST, now=200.0)
    assert changed is True
    assert (record.digest, record.created_at, record.updated_at) == (OTHER_DIGEST, 100.0, 200.0)
    assert registry.get("echo") == record


def test_a_new_spec_with_the_same_digest_replaces(registry):
    registry.put(_spec(), DIGEST, now=100.0)
    record, changed = registry.put(_spec(memory_mb=1024), DIGEST, now=200.0)
    assert changed is True
    assert registry.get("echo") == record
    assert registry.get("echo").spec.memory_mb == 1024


def test_the_spec_round_trips_through_the_database(registry):
    spec = _spec(
        description="échos",
        timeout_s=2.5,
        min_instances=1,
        queue_timeout_s=None,
        preload=["json"],
        env={"MODEL": "small"},
    )
    registry.put(spec, DIGEST, now=1.0)
    assert registry.get("echo").spec == spec


def test_delete_returns_the_record_and_forgets_the_function(registry):
    created, _ = registry.put(_spec(), DIGEST, now=100.0)
    assert registry.delete("echo") == created
    assert registry.get("echo") is None
    assert registry.list() == []


def test_deleting_a_missing_function_returns_none(registry):
    assert registry.delete("ghost") is None


def test_list_is_sorted_by_name(registry):
    for name in ["zeta", "alpha", "Mid", "beta"]:
        registry.put(_spec(name), DIGEST, now=1.0)
    assert [record.name for record in registry.list()] == ["Mid", "alpha", "beta", "zeta"]


def test_digests_in_use_lists_each_digest_once(registry):
    registry.put(_spec("a"), DIGEST, now=1.0)
    registry.put(_spec("b"), DIGEST, now=1.0)
    registry.put(_spec("c"), OTHER_DIGEST, now=1.0)
    assert registry.digests_in_use() == {DIGEST, OTHER_DIGEST}


def test_records_persist_across_registry_objects_on_the_same_file(db_path):
    first = Registry.sqlite(db_path)
    try:
        record, _ = first.put(_spec(), DIGEST, now=100.0)
    finally:
        first.close()
    second = Registry.sqlite(db_path)
    try:
        assert second.get("echo") == record
        assert second.list() == [record]
        assert second.put(_spec(), DIGEST, now=300.0) == (record, False)
    finally:
        second.close()


def test_sqlite_creates_the_parent_directory(db_path):
    assert not db_path.parent.exists()
    Registry.sqlite(db_path).close()
    assert db_path.is_file()


def test_a_record_serialises_for_the_api(registry):
    record, _ = registry.put(_spec(), DIGEST, now=100.0)
    body = record.to_dict()
    assert body["name"] == "echo"
    assert body["version"] == LATEST
    assert body["digest"] == DIGEST
    assert (body["createdAt"], body["updatedAt"]) == (100.0, 100.0)
    assert body["config"]["handler"] == "app:handler"
