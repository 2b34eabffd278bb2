"""What a newcomer meets in the first hour: refusals that name the culprit, a terminal that says
what the platform does, metrics that forget removed functions."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from tests.system.conftest import Server

HELLO = """
    def handler(event, context):
        if event.get("fail"):
            raise ValueError("no such customer")
        return {"ok": True}
"""


@pytest.fixture
def chatty(tmp_path):
    """A server as `make serve` runs it (info level), with the access log on."""
    running = Server(tmp_path / "data", "--log-level", "info", "--access-log").start()
    yield running
    running.stop()


def _terminal(server: Server, wanted: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = server.log.read_text()
        if wanted in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{wanted!r} never appeared in serve's output:\n{server.log.read_text()}")


def test_a_handler_name_with_a_typo_is_refused_at_deploy_with_a_hint(server, make_function):
    directory = make_function("typo", HELLO, handler="app:handlr")
    deploy = server.cli("deploy", str(directory))
    assert deploy.returncode == 2
    assert "'app:handlr'" in deploy.stderr
    assert "did you mean 'app:handler'?" in deploy.stderr
    assert server.http("GET", "/v1/functions/typo").status_code == 404  # nothing was deployed


def test_a_bad_name_is_blamed_on_the_flag_not_on_mlambda_toml(server, make_function):
    directory = make_function("fine", HELLO)
    deploy = server.cli("deploy", str(directory), "--name", "no spaces please")
    assert deploy.returncode == 2
    assert deploy.stderr.startswith("error: --name must be 1-64 letters")
    assert "mlambda.toml" not in deploy.stderr
    url = server.http("PUT", "/v1/functions/bad%20name", content=b"x")
    assert url.status_code == 400


def test_metrics_forget_a_removed_function(server, make_function):
    server.deploy(make_function("gone", HELLO))
    server.http("POST", "/v1/functions/gone/invoke", json={})
    server.http("POST", "/v1/functions/gone/invoke", json={"fail": True})
    assert 'function="gone"' in server.http("GET", "/metrics").text
    assert server.cli("rm", "gone").returncode == 0
    assert 'function="gone"' not in server.http("GET", "/metrics").text


def test_the_terminal_shows_deploys_removals_failures_throttles_and_requests(chatty, make_function):
    chatty.deploy(make_function("web", HELLO))
    _terminal(chatty, "deploy web $LATEST sha256:")
    failed = chatty.http("POST", "/v1/functions/web/invoke", json={"fail": True})
    assert failed.status_code == 502
    request_id = failed.headers["x-mlambda-request-id"]
    _terminal(chatty, f"web failed: ValueError: no such customer (request {request_id}")
    # The access log: one line per HTTP request.
    _terminal(chatty, '"POST /v1/functions/web/invoke HTTP/1.1" 502')
    slow = "import time\ndef handler(e, c):\n    time.sleep(1)\n"
    chatty.deploy(make_function("slow", slow, max_instances=1, queue_timeout_s=0))
    # Started first: a queue waiting on a starting instance is allowed init_timeout_s.
    assert chatty.http("POST", "/v1/functions/slow/invoke", json={}).status_code == 200
    with httpx.Client(timeout=30) as client:
        auth = {"Authorization": f"Bearer {chatty.key}"}
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            codes = list(
                pool.map(
                    lambda _: (
                        client.post(
                            f"{chatty.url}/v1/functions/slow/invoke", json={}, headers=auth
                        ).status_code
                    ),
                    range(3),
                )
            )
    assert 429 in codes
    _terminal(chatty, "slow throttled: Rate exceeded")
    assert chatty.cli("rm", "web").returncode == 0
    text = _terminal(chatty, "delete web sha256:")
    assert chatty.key not in text  # the admin key never reaches the terminal
