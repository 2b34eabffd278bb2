"""What `mlambda cost` reports is exactly what the REPORT lines billed: GB-seconds equal to the
sum of billed durations times memory, invocations and errors counted, kept across a restart,
priced at the rates serve was given, by function, version and day."""

from __future__ import annotations

import json
import re

import pytest

from tests.system.conftest import Server
from tests.system.test_async import _function

SLEEPER = """
    import time

    def handler(event, context):
        time.sleep(event.get("ms", 1) / 1000)
        if event.get("fail"):
            raise ValueError("asked to fail")
        return {"ok": True}
"""
REPORT = re.compile(r"Billed Duration: (\d+) ms\tMemory Size: (\d+) MB")


def _billed(server: Server, name: str) -> tuple[int, int]:
    """(invocations, memory_mb x billed_ms summed) from the function's REPORT lines."""
    text = "".join(server.client.logs(name, tail=10_000))
    lines = [line for line in text.splitlines() if "REPORT" in line]
    pairs = [REPORT.search(line) for line in lines]
    assert all(pairs), lines[:3]
    return len(pairs), sum(int(p.group(1)) * int(p.group(2)) for p in pairs if p)


def test_cost_equals_what_the_report_lines_billed_and_outlives_a_restart(tmp_path):
    args = ("--price-gb-second", "0.001", "--price-per-million-requests", "100",
            "--machine-hourly-cost", "0.5")  # fmt: skip
    server = Server(tmp_path / "data", *args).start()
    try:
        server.deploy(_function(tmp_path, "scorer", SLEEPER, memory_mb=256))
        server.deploy(_function(tmp_path, "other", SLEEPER, memory_mb=128))
        for n in range(12):
            event = json.dumps({"ms": n * 3, "fail": n % 4 == 0})
            server.http("POST", "/v1/functions/scorer/invoke", content=event)  # 3 fail
        server.client.invoke("other", b'{"ms": 5}')
        count, mb_ms = _billed(server, "scorer")
        assert count == 12
        report = server.http("GET", "/v1/cost", params={"since": "1d"}).json()
        row = next(r for r in report["rows"] if r["name"] == "scorer")
        assert (row["invocations"], row["errors"]) == (12, 3)
        assert row["gbSeconds"] == mb_ms / 1024 / 1000  # exact: the same integers
        assert row["lambdaCost"] == pytest.approx(mb_ms / 1024 / 1000 * 0.001 + 12 * 100 / 1e6)
        assert report["total"]["invocations"] == 13
        assert report["total"]["hereCost"] == pytest.approx(0.5 * 24)  # a day of the machine
        shares = sum(r["hereCost"] for r in report["rows"])
        assert shares == pytest.approx(0.5 * 24)
        server.stop()  # written as serve stops
        server = Server(tmp_path / "data", *args)
        server.start()
        again = server.http("GET", "/v1/cost", params={"since": "1d"}).json()
        assert next(r for r in again["rows"] if r["name"] == "scorer") == row
        by_version = server.http("GET", "/v1/cost", params={"by": "version"}).json()
        assert {r["name"] for r in by_version["rows"]} == {"scorer:$LATEST", "other:$LATEST"}
        printed = server.cli("cost", "--since", "2d")
        assert printed.returncode == 0, printed.stderr
        assert "scorer" in printed.stdout and "total" in printed.stdout
        for bad, says in (({"since": "week"}, "since must be like"), ({"by": "x"}, "by must")):
            refused = server.http("GET", "/v1/cost", params=bad)
            assert refused.status_code == 400 and says in refused.json()["errorMessage"]
    finally:
        server.stop()
