"""The async queue on each backend, with faults: kill -9 of serve, and a broker that goes down
and comes back while events flow (Redis and NATS of the test's own, restarted on their data)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.brokers import BROKERS, Broker
from tests.system.conftest import Server
from tests.system.test_async import _accept, _function, _wait


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker | None]:
    if request.param == "sqlite":
        yield None
        return
    running = BROKERS[request.param](tmp_path / request.param).start()
    yield running
    running.stop()


def _serve(data: Path, broker: Broker | None) -> Server:
    queue = ("--queue-url", broker.url) if broker is not None else ()
    return Server(data, "--backend", "zygote", *queue).start()


@pytest.mark.parametrize("broker", ["sqlite", "redis", "nats"], indirect=True)
def test_kill_9_of_serve_loses_no_accepted_event(tmp_path, broker):
    data = tmp_path / "data"
    server = _serve(data, broker)
    server.deploy(_function(tmp_path / "fns", "work", max_instances=2))
    ids = [_accept(server, "work", {"sleep": 0.2, "n": n}) for n in range(24)]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = [r["state"] for r in server.http("GET", "/v1/invocations").json()["invocations"]]
        if "succeeded" in states and "running" in states and "queued" in states:
            break
        time.sleep(0.02)
    server.stop(signal.SIGKILL)  # some done, some running, some queued
    restarted = _serve(data, broker)
    try:
        records = [_wait(restarted, i, timeout=60) for i in ids]
        assert [r["state"] for r in records] == ["succeeded"] * len(ids)
        assert sorted(r["result"]["n"] for r in records) == list(range(24))
        # The attempts cut short by the kill were counted, and then retried.
        assert any(r["attempts"] == 2 for r in records)
    finally:
        restarted.stop()


def _until_accepted(server: Server) -> None:
    """Wait for the platform to take events again: until then each accept is a 503."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        response = server.http("GET", "/v1/invocations", params={"limit": 1})
        if response.status_code == 200:
            return
        assert response.status_code == 503, response.text
        time.sleep(0.1)
    raise AssertionError("the platform did not reach the broker again within 15 s")


@pytest.mark.parametrize("broker", ["redis", "nats"], indirect=True)
def test_a_broker_restart_refuses_accepts_while_down_and_the_flow_resumes(tmp_path, broker):
    server = _serve(tmp_path / "data", broker)
    try:
        server.deploy(_function(tmp_path / "fns", "work", max_instances=2))
        before = [_accept(server, "work", {"sleep": 0.1, "n": n}) for n in range(20)]
        time.sleep(0.3)  # some done, some running, most queued
        broker.stop(signal.SIGKILL)
        started = time.monotonic()
        refused = server.http("POST", "/v1/functions/work/invoke?mode=async", json={"n": -1})
        # Never a 202 for an event that was not stored; and the answer comes quickly.
        assert refused.status_code == 503, refused.text
        assert refused.json()["errorType"] == "ServiceUnavailableException"
        assert "queue" in refused.json()["errorMessage"]
        assert time.monotonic() - started < 10
        lambda_refused = server.http(
            "POST",
            "/2015-03-31/functions/work/invocations",
            json={"n": -2},
            headers={"X-Amz-Invocation-Type": "Event"},
        )
        assert lambda_refused.status_code == 503
        assert server.http("GET", "/metrics").status_code == 200  # the rest still answers
        time.sleep(1.0)  # attempts end while the broker is down: their outcomes wait
        broker.start()
        _until_accepted(server)  # the gateway reconnects by itself, within a moment
        after = [_accept(server, "work", {"n": 100 + n}) for n in range(5)]
        records = [_wait(server, i, timeout=90) for i in before + after]
        assert [r["state"] for r in records] == ["succeeded"] * 25
        results = sorted(r["result"]["n"] for r in records)
        # Nothing lost; nothing refused was stored.
        assert results == [*range(20), *range(100, 105)]
    finally:
        server.stop()
