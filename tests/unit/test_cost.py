"""Cost, by table: how far back a report goes, how usage groups, what it costs on Lambda and
here, how a small figure prints; and the usage ledger counting, writing and reading back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mlambda.cost_cli import money
from mlambda.errors import InvalidRequest
from mlambda.observe.cost import Rates, cost_rows, group, since_seconds
from mlambda.observe.usage import Usage, UsageLedger
from mlambda.registry.tables import metadata


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("24h", 86400), ("7d", 604800)])
def test_since_is_minutes_hours_or_days(text, seconds):
    assert since_seconds(text) == seconds


@pytest.mark.parametrize("text", ["7", "d", "0d", "1w", "-1d", "1.5h", ""])
def test_a_bad_since_is_refused(text):
    with pytest.raises(InvalidRequest, match="since must be like"):
        since_seconds(text)


USAGE = {
    ("a", "$LATEST", "2026-12-06"): Usage(10, 1, 1000, 1000 * 1024),  # 1 GB-s
    ("a", "3", "2026-12-07"): Usage(30, 0, 3000, 3000 * 1024),  # 3 GB-s
    ("b", "$LATEST", "2026-12-07"): Usage(60, 6, 6000, 6000 * 512),  # 3 GB-s
}


@pytest.mark.parametrize(
    ("by", "names"),
    [
        ("function", {"a": 40, "b": 60}),
        ("version", {"a:$LATEST": 10, "a:3": 30, "b:$LATEST": 60}),
        ("day", {"2026-12-06": 10, "2026-12-07": 90}),
    ],
)
def test_usage_groups_by_function_version_or_day(by, names):
    assert {name: usage.invocations for name, usage in group(USAGE, by).items()} == names


def test_lambda_cost_is_gb_seconds_and_requests_and_here_is_shared_by_gb_seconds():
    rates = Rates(gb_second=0.5, per_million_requests=1_000_000.0, machine_hourly=2.0)
    rows, total = cost_rows(USAGE, rates, "function", hours=7)
    a, b = {row["name"]: row for row in rows}["a"], {row["name"]: row for row in rows}["b"]
    assert (a["gbSeconds"], b["gbSeconds"]) == (4.0, 3.0)
    assert a["lambdaCost"] == 4.0 * 0.5 + 40 * 1.0
    assert a["lambdaCostPerInvocation"] == a["lambdaCost"] / 40
    assert (a["hereCost"], b["hereCost"]) == (pytest.approx(14 * 4 / 7), pytest.approx(14 * 3 / 7))
    assert total["hereCost"] == 14.0 and total["invocations"] == 100 and total["errors"] == 7
    assert [row["name"] for row in rows] == ["b", "a"]  # the largest Lambda cost first


def test_no_usage_costs_nothing_on_lambda_and_the_machine_all_the_same():
    rows, total = cost_rows({}, Rates(1.0, 1.0, 3.0), "day", hours=2)
    assert rows == [] and total["lambdaCost"] == 0 and total["hereCost"] == 6.0
    assert total["lambdaCostPerInvocation"] is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "-"), (0.0, "$0.00"), (12.3456, "$12.35"), (0.0000021, "$0.0000021"), (0.01, "$0.01")],
)
def test_money_shows_the_digits_a_small_figure_needs(value, shown):
    assert money(value) == shown


def test_the_ledger_counts_writes_and_reads_back_what_is_not_written_yet():
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    now = [1_796_000_000.0]  # 2026-11-30
    ledger = UsageLedger(engine, clock=lambda: now[0])
    ledger.add("a", "$LATEST", 256, 10, error=False)
    ledger.add("a", "$LATEST", 256, 5, error=True)
    assert ledger.rows("2026-11-30") == {
        ("a", "$LATEST", "2026-11-30"): Usage(2, 1, 15, 3840, 0, 2)
    }
    ledger.write()
    ledger.add("a", "$LATEST", 256, 1, error=False)
    assert ledger.rows("2026-11-30")[("a", "$LATEST", "2026-11-30")] == Usage(3, 1, 16, 4096, 0, 3)
    ledger.write()
    ledger.write()  # nothing new: nothing added twice
    assert ledger.rows("2026-11-30")[("a", "$LATEST", "2026-11-30")] == Usage(3, 1, 16, 4096, 0, 3)
    assert ledger.rows("2026-12-01") == {}


def test_cpu_time_and_predictions_are_counted_and_priced_per_prediction():
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    ledger = UsageLedger(engine, clock=lambda: 1_796_000_000.0)
    ledger.add("m", "1", 1024, 1000, error=False, cpu_ms=250.4, rows=32)
    ledger.add("m", "1", 1024, 1000, error=True, cpu_ms=10.0, rows=0)
    ledger.write()
    usage = ledger.rows("2026-11-30")
    assert usage[("m", "1", "2026-11-30")] == Usage(2, 1, 2000, 2048000, 260, 32)
    rows, _ = cost_rows(usage, Rates(1.0, 0.0, 0.0), "function", hours=1)
    assert rows[0]["cpuSeconds"] == 0.26 and rows[0]["predictions"] == 32
    assert rows[0]["lambdaCostPerPrediction"] == pytest.approx(2.0 / 32)
    assert rows[0]["hereCostPerPrediction"] == 0.0


def test_an_older_usage_table_gains_the_new_columns_in_place(tmp_path):
    from mlambda.registry.registry import Registry

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE usage (function VARCHAR(64), version VARCHAR(32), day VARCHAR(10), "
            "invocations BIGINT NOT NULL, errors BIGINT NOT NULL, billed_ms BIGINT NOT NULL, "
            "mb_ms BIGINT NOT NULL, PRIMARY KEY (function, version, day))"
        ))  # fmt: skip
        conn.execute(sa.text("INSERT INTO usage VALUES ('f', '$LATEST', '2026-11-30', 3, 0, 9, 9)"))
    engine.dispose()
    registry = Registry(f"sqlite:///{tmp_path / 'r.db'}")
    ledger = UsageLedger(registry.engine, clock=lambda: 1_796_000_000.0)
    ledger.add("f", "$LATEST", 1, 1, error=False, cpu_ms=5, rows=4)
    ledger.write()
    assert ledger.rows("2026-11-30")[("f", "$LATEST", "2026-11-30")] == Usage(4, 0, 10, 10, 5, 4)
    registry.close()
