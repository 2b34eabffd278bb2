"""Priming: a template warms up once before it forks, and no serving instance ever does."""

from __future__ import annotations

import concurrent.futures
import json
import re
from collections.abc import Iterator

import numpy as np
import pytest

from tests.models import build
from tests.system.conftest import Server
from tests.system.test_invoke import _gone
from tests.system.test_zygotes import _templates, _wait_for

PRIMED = """
    import os

    PRIMED = []  # set by prime in the template; each instance forked from it inherits it

    def prime(context):
        PRIMED.append(context.aws_request_id)
        print(f"priming in {os.getpid()}")

    def handler(event, context):
        if event.get("hold"):
            import time
            time.sleep(event["hold"])
        return {"pid": os.getpid(), "primed": PRIMED}
"""

FAILING = """
    def prime(context):
        raise ValueError("warm-up data is missing")

    def handler(event, context):
        return 1
"""


@pytest.fixture(scope="module")
def zygote_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("priming") / "data", "--backend", "zygote").start()
    yield running
    running.stop()


def _logs(server: Server, name: str) -> str:
    return "".join(server.client.logs(name, tail=10_000))


def _invoke(server: Server, name: str, event: bytes = b"{}") -> dict:
    return json.loads(server.client.invoke(name, event))


def test_prime_runs_once_in_the_template_and_instances_inherit_it(zygote_server, make_function):
    zygote_server.deploy(make_function("primed", PRIMED, keep_alive_s=0.3, max_instances=3))
    pids = set()
    for _ in range(3):  # scale from zero, three times over
        reply = _invoke(zygote_server, "primed")
        assert reply["primed"] == ["prime"]
        pids.add(reply["pid"])
        assert _gone(reply["pid"], within=5)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        replies = list(
            pool.map(lambda _: _invoke(zygote_server, "primed", b'{"hold": 0.5}'), "abc")
        )
    assert all(r["primed"] == ["prime"] for r in replies)
    pids |= {r["pid"] for r in replies}

    logs = _logs(zygote_server, "primed")
    primed_in = re.findall(r"priming in (\d+)", logs)
    assert len(primed_in) == 1  # once per template build, never per instance
    template = [
        r["pid"]
        for r in zygote_server.client.processes()
        if r["function"] == "primed" and r["kind"] == "template"
    ]
    assert primed_in == [str(pid) for pid in template]
    assert int(primed_in[0]) not in pids
    assert "mlambda: primed the template of primed with prime(context)" in logs


def test_prime_that_raises_fails_init_naming_prime(zygote_server, make_function):
    zygote_server.deploy(make_function("failing", FAILING))
    response = zygote_server.http("POST", "/v1/functions/failing/invoke", json={})
    assert response.status_code == 502
    body = response.json()
    assert body["errorType"] == "Runtime.InitError"
    assert "prime(context) raised" in body["errorMessage"]
    assert "warm-up data is missing" in body["errorMessage"]


def test_no_template_means_no_prime(zygote_server, make_function):
    zygote_server.deploy(make_function("untemplated", PRIMED, fork_template=False))
    assert _invoke(zygote_server, "untemplated")["primed"] == []
    assert "priming in" not in _logs(zygote_server, "untemplated")


def test_prime_false_turns_priming_off(zygote_server, make_function):
    zygote_server.deploy(make_function("unprimed", PRIMED, prime=False))
    assert _invoke(zygote_server, "unprimed")["primed"] == []
    assert "priming in" not in _logs(zygote_server, "unprimed")


def test_a_model_is_primed_in_its_template_unless_prime_is_false(zygote_server, tmp_path):
    path, batch, (labels, _) = build.sklearn_forest(tmp_path)
    zygote_server.deploy_path(path, name="forest")
    cold = zygote_server.http(
        "POST", "/v1/functions/forest/invoke", json={"inputs": batch.tolist()}
    )
    assert cold.json() == {"outputs": labels.tolist()}
    assert "mlambda: primed the template of forest with model sample" in _logs(
        zygote_server, "forest"
    )

    directory = tmp_path / "unprimed_forest"
    directory.mkdir()
    (directory / path.name).write_bytes(path.read_bytes())
    (directory / "mlambda.toml").write_text(
        f'[function]\nname = "unprimed_forest"\nmodel = "{path.name}"\nprime = false\n'
    )
    zygote_server.deploy(directory)
    outputs = zygote_server.http(
        "POST", "/v1/functions/unprimed_forest/invoke", json={"inputs": batch.tolist()}
    ).json()["outputs"]
    np.testing.assert_array_equal(outputs, labels)
    assert _wait_for(lambda: "unprimed_forest" in _templates(zygote_server))
    assert "primed the template" not in _logs(zygote_server, "unprimed_forest")


def test_the_process_backend_never_primes(tmp_path, make_function):
    server = Server(tmp_path / "data", "--backend", "process").start()
    try:
        server.deploy(make_function("fresh", PRIMED))
        assert _invoke(server, "fresh")["primed"] == []
        assert "priming in" not in _logs(server, "fresh")
    finally:
        server.stop()
