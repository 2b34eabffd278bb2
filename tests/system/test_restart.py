"""Durable state: a restart keeps functions; a corrupted artifact is refused, never executed."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.system.conftest import Server
from tests.system.test_invoke import _gone


def test_functions_survive_a_restart_of_serve(tmp_path, make_function):
    data = tmp_path / "data"
    first = Server(data).start()
    try:
        first.deploy(make_function("keeper", "def handler(e, c):\n    return {'kept': e}\n"))
        key = first.key
    finally:
        first.stop()

    second = Server(data).start()
    try:
        assert second.key == key
        assert [f["name"] for f in second.client.list()] == ["keeper"]
        assert json.loads(second.client.invoke("keeper", b"[1, 2]")) == {"kept": [1, 2]}
    finally:
        second.stop()


def test_a_corrupted_artifact_is_detected_on_read_and_not_executed(tmp_path, make_function):
    data = tmp_path / "data"
    code = "print('INIT RAN')\ndef handler(e, c):\n    return 1\n"
    first = Server(data).start()
    try:
        directory = make_function("victim", code)
        digest = first.deploy(directory)["function"]["digest"]
    finally:
        first.stop()
    log = data / "logs" / "victim.log"
    inits = log.read_text().count("INIT RAN") if log.exists() else 0  # a deploy warms it
    artifact = data / "artifacts" / "sha256" / digest[7:9] / digest[7:]
    artifact.chmod(0o644)
    raw = bytearray(artifact.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    artifact.write_bytes(bytes(raw))

    second = Server(data).start()
    try:
        response = second.http("POST", "/v1/functions/victim/invoke", json={})
        assert response.status_code == 500
        body = response.json()
        assert body["errorType"] == "ArtifactCorruptedException"
        assert digest in body["errorMessage"] and "redeploy" in body["errorMessage"]
        assert "".join(second.client.logs("victim", tail=1000)).count("INIT RAN") == inits

        assert second.deploy(directory)["changed"] is False  # same code: stored again, intact
        assert json.loads(second.client.invoke("victim", b"{}")) == 1
    finally:
        second.stop()


def test_killing_serve_leaves_no_instance_behind(tmp_path, make_function):
    server = Server(tmp_path / "data").start()
    server.deploy(
        make_function("orphan", "import os\ndef handler(e, c):\n    return os.getpid()\n")
    )
    pid = json.loads(server.client.invoke("orphan", b"{}"))
    server.stop(signal.SIGKILL)
    assert _gone(pid, within=5)


def test_stopping_serve_stops_its_instances(tmp_path, make_function):
    server = Server(tmp_path / "data").start()
    server.deploy(make_function("tidy", "import os\ndef handler(e, c):\n    return os.getpid()\n"))
    pid = json.loads(server.client.invoke("tidy", b"{}"))
    server.stop(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert server.process is not None and server.process.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in server.log.read_text()
    assert _gone(pid, within=5)


def test_a_relative_data_dir_works_as_the_default_does(tmp_path, make_function):
    server = Server(Path(".mlambda"), cwd=tmp_path).start()
    try:
        server.deploy(make_function("rel", "def handler(e, c):\n    return 'ok'\n"))
        assert json.loads(server.client.invoke("rel", b"{}")) == "ok"
        assert (tmp_path / ".mlambda" / "registry.db").is_file()
    finally:
        server.stop()
