"""memory_mb is enforced per instance: past it the instance dies and the caller is told why."""

from __future__ import annotations

import json

import pytest

from mlambda.backends.cgroups import find_memory_cgroup
from tests.system.conftest import BACKENDS, Server

HOG = """
    import os, time

    def handler(event, context):
        if event.get("mb"):
            block = b"x" * (event["mb"] * 1024 * 1024)
            time.sleep(1)
            return len(block)
        return os.getpid()
"""

MODES = [
    pytest.param(
        "cgroup",
        marks=pytest.mark.skipif(
            find_memory_cgroup() is None, reason="no writable memory cgroup on this machine"
        ),
    ),
    "rss",
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_allocating_past_memory_mb_is_out_of_memory_and_neighbours_live(
    tmp_path, make_function, backend, mode
):
    server = Server(tmp_path / "data", "--backend", backend, "--memory-limits", mode).start()
    try:
        server.deploy(make_function("hog", HOG, memory_mb=128))
        server.deploy(make_function("neighbour", HOG, memory_mb=128))
        neighbour = json.loads(server.client.invoke("neighbour", b"{}"))
        small = json.loads(server.client.invoke("hog", b'{"mb": 8}'))
        assert small == 8 * 1024 * 1024

        response = server.http("POST", "/v1/functions/hog/invoke", json={"mb": 400})
        assert response.status_code == 502
        body = response.json()
        assert body["errorType"] == "Runtime.OutOfMemory"
        assert "memory limit of 128 MB" in body["errorMessage"]

        assert json.loads(server.client.invoke("neighbour", b"{}")) == neighbour
        assert json.loads(server.client.invoke("hog", b'{"mb": 8}')) == 8 * 1024 * 1024
        logs = "".join(server.client.logs("hog"))
        assert "Error Type: Runtime.OutOfMemory" in logs
    finally:
        server.stop()


def test_memory_limits_off_lets_a_function_use_what_it_allocates(tmp_path, make_function):
    server = Server(tmp_path / "data", "--memory-limits", "off").start()
    try:
        server.deploy(make_function("hog", HOG, memory_mb=128))
        assert json.loads(server.client.invoke("hog", b'{"mb": 200}')) == 200 * 1024 * 1024
    finally:
        server.stop()
