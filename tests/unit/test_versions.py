"""Versions and aliases: the routing decisions as tables, and the releases on a SQLite file
(publish, counters, conflicts, rollback)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlambda.errors import Conflict, InvalidSpec, NotFound, PreconditionFailed
from mlambda.registry import LATEST, Registry
from mlambda.registry.model import (
    HISTORY,
    Alias,
    Routing,
    check_alias_name,
    check_routing,
    is_version,
    merge_qualifiers,
    parse_weights,
    pick,
    with_change,
)
from mlambda.spec import FunctionSpec

DIGESTS = ["sha256:" + c * 64 for c in "abcdef"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("42", True), ("0", False), ("01", False), ("-1", False), ("$LATEST", False),
     ("live", False), ("", False), ("1.0", False)],
)  # fmt: skip
def test_is_version(text, expected):
    assert is_version(text) is expected


@pytest.mark.parametrize(
    ("name", "ok"),
    [("live", True), ("prod-2", True), ("a_b", True), ("x" * 128, True), ("x" * 129, False),
     ("7", False), ("", False), ("$LATEST", False), ("a:b", False), ("a b", False), ("7a", True)],
)  # fmt: skip
def test_alias_names(name, ok):
    if ok:
        assert check_alias_name(name) == name
    else:
        with pytest.raises(InvalidSpec):
            check_alias_name(name)


@pytest.mark.parametrize(
    ("in_name", "in_query", "expected"),
    [("", None, ""), ("live", None, "live"), ("", "2", "2"), ("2", "2", "2"), ("2", "3", None)],
)
def test_a_qualifier_in_the_name_and_in_the_query_must_agree(in_name, in_query, expected):
    if expected is None:
        with pytest.raises(InvalidSpec, match="does not match"):
            merge_qualifiers(in_name, in_query)
    else:
        assert merge_qualifiers(in_name, in_query) == expected


EXISTS = {"1": True, "2": True, "3": True}


@pytest.mark.parametrize(
    ("routing", "error"),
    [
        (Routing("1"), None),
        (Routing(LATEST), None),
        (Routing("1", (("2", 0.1),)), None),
        (Routing("1", (("2", 0.0),)), None),
        (Routing("1", (("2", 1.0),)), InvalidSpec),
        (Routing("1", (("2", -0.1),)), InvalidSpec),
        (Routing("1", (("2", 0.1), ("3", 0.1))), InvalidSpec),
        (Routing("1", (("1", 0.1),)), InvalidSpec),
        (Routing(LATEST, (("2", 0.1),)), InvalidSpec),
        (Routing("1", ((LATEST, 0.1),)), InvalidSpec),
        (Routing("live"), InvalidSpec),
        (Routing("9"), NotFound),
        (Routing("1", (("9", 0.1),)), NotFound),
    ],
)
def test_routing_rules(routing, error):
    if error is None:
        assert check_routing(routing, EXISTS) == routing
    else:
        with pytest.raises(error):
            check_routing(routing, EXISTS)


@pytest.mark.parametrize(
    ("draw", "expected"), [(0.0, "2"), (0.0999, "2"), (0.1, "1"), (0.5, "1"), (0.9999, "1")]
)
def test_pick_gives_the_additional_version_its_share_of_draws(draw, expected):
    assert pick(Routing("1", (("2", 0.1),)), draw) == expected


def test_pick_over_many_draws_matches_the_weight():
    draws = random.Random(7)
    routing = Routing("1", (("2", 0.25),))
    picked = [pick(routing, draws.random()) for _ in range(20_000)]
    assert abs(picked.count("2") / len(picked) - 0.25) < 0.01


def test_history_grows_on_a_change_only_and_is_capped():
    alias = Alias("fn", "live", Routing("1"))
    assert with_change(alias, Routing("1")) == ()
    assert with_change(alias, Routing("2")) == (Routing("1"),)
    long = Alias("fn", "live", Routing("99"), history=tuple(Routing(str(i)) for i in range(1, 40)))
    history = with_change(long, Routing("100"))
    assert len(history) == HISTORY and history[-1] == Routing("99")


@pytest.mark.parametrize(
    ("raw", "ok"),
    [({"2": 0.1}, True), ({"2": 1}, True), ({"2": "0.1"}, False), ({"2": True}, False)],
)
def test_weights_must_be_numbers(raw, ok):
    if ok:
        assert parse_weights(raw) == (("2", float(raw["2"])),)
    else:
        with pytest.raises(InvalidSpec):
            parse_weights(raw)


# -- releases on a registry -------------------------------------------------------------------


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    registry = Registry.sqlite(tmp_path / "registry.sqlite3")
    yield registry
    registry.close()


def _deploy(registry: Registry, n: int, now: float = 100.0) -> None:
    registry.put(FunctionSpec(name="fn", handler="app:handler"), DIGESTS[n], now=now)


def test_publish_freezes_latest_and_an_unchanged_latest_is_not_published_twice(registry):
    _deploy(registry, 0)
    one, created = registry.releases.publish("fn", "first", 101.0)
    assert (one.version, one.digest, one.description, created) == ("1", DIGESTS[0], "first", True)
    again, created = registry.releases.publish("fn", "", 102.0)
    assert (again.version, created) == ("1", False)
    _deploy(registry, 1)
    two, created = registry.releases.publish("fn", "", 103.0)
    assert (two.version, created) == ("2", True)
    assert [v.version for v in registry.releases.versions("fn")] == ["1", "2"]
    assert registry.releases.version("fn", "1").digest == DIGESTS[0]


def test_version_numbers_are_never_reused(registry):
    _deploy(registry, 0)
    registry.releases.publish("fn", "", 101.0)
    _deploy(registry, 1)
    registry.releases.publish("fn", "", 102.0)
    registry.releases.delete_version("fn", "2")
    _deploy(registry, 2)
    three, _ = registry.releases.publish("fn", "", 103.0)
    assert three.version == "3"


def test_publish_checks_code_sha256_and_revision_id(registry):
    _deploy(registry, 0)
    latest = registry.get("fn")
    with pytest.raises(InvalidSpec, match="CodeSha256"):
        registry.releases.publish("fn", "", 101.0, code_sha256="nope")
    with pytest.raises(PreconditionFailed):
        registry.releases.publish("fn", "", 101.0, revision="nope")
    record, _ = registry.releases.publish(
        "fn", "", 101.0, code_sha256=latest.code_sha256, revision=latest.revision_id
    )
    assert record.version == "1"
    with pytest.raises(NotFound):
        registry.releases.publish("nobody", "", 101.0)


def test_aliases_create_move_conflict_and_roll_back(registry):
    for n in range(3):
        _deploy(registry, n)
        registry.releases.publish("fn", "", 100.0 + n)
    live, created = registry.releases.put_alias("fn", "live", Routing("1"), 110.0)
    assert created and live.history == ()
    with pytest.raises(Conflict):
        registry.releases.put_alias("fn", "live", Routing("2"), 111.0, must_exist=False)
    with pytest.raises(NotFound):
        registry.releases.put_alias("fn", "other", Routing("2"), 111.0, must_exist=True)
    with pytest.raises(PreconditionFailed):
        registry.releases.put_alias("fn", "live", Routing("2"), 111.0, revision="stale")
    moved, created = registry.releases.put_alias(
        "fn", "live", Routing("2", (("3", 0.1),)), 112.0, revision=live.revision_id
    )
    assert not created and moved.history == (Routing("1"),)
    with pytest.raises(Conflict, match="live"):
        registry.releases.delete_version("fn", "3")
    back = registry.releases.rollback("fn", "live", 113.0)
    assert back.routing == Routing("1") and back.history == ()
    with pytest.raises(Conflict):
        registry.releases.rollback("fn", "live", 114.0)
    registry.releases.delete_version("fn", "3")


def test_a_rollback_skips_routings_whose_versions_were_deleted(registry):
    for n in range(3):
        _deploy(registry, n)
        registry.releases.publish("fn", "", 100.0 + n)
    for version in ("1", "2", "3"):
        registry.releases.put_alias("fn", "live", Routing(version), 110.0)
    registry.releases.put_alias("fn", "live", Routing("1"), 111.0)
    registry.releases.delete_version("fn", "3")  # no alias routes to 3 now
    registry.releases.put_alias("fn", "live", Routing("2"), 112.0)
    back = registry.releases.rollback("fn", "live", 113.0)
    assert back.routing == Routing("1")
    back = registry.releases.rollback("fn", "live", 114.0)
    assert back.routing == Routing("2")  # "3" was skipped


def test_deleting_the_function_deletes_its_versions_and_aliases(registry, tmp_path):
    _deploy(registry, 0)
    registry.releases.publish("fn", "", 101.0)
    registry.releases.put_alias("fn", "live", Routing("1"), 102.0)
    assert DIGESTS[0] in registry.digests_in_use()
    registry.delete("fn")
    _deploy(registry, 1)
    assert registry.releases.versions("fn") == [] and registry.releases.aliases("fn") == []
    assert registry.releases.publish("fn", "", 103.0)[0].version == "1"
