"""`mlambda ps` and GET /v1/instances: every process of the platform, with RSS and PSS."""

from __future__ import annotations

import json

from tests.system.conftest import Server

HELLO = "import os\ndef handler(event, context):\n    return os.getpid()\n"


def test_ps_lists_instances_with_their_memory(server, make_function):
    server.deploy(make_function("hello", HELLO))
    pid = json.loads(server.client.invoke("hello", b"{}"))
    rows = server.client.processes()
    instance = next(r for r in rows if r["kind"] == "instance")
    assert instance["function"] == "hello" and instance["pid"] == pid
    assert instance["state"] == "idle"
    assert instance["rssKiB"] > 1000 and 0 < instance["pssKiB"] <= instance["rssKiB"]

    table = server.cli("ps")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == [
        *("KIND", "FUNCTION", "PID", "STATE", "TIER", "THREADS", "AGE", "RSS", "PSS")
    ]
    assert str(pid) in table.stdout


def test_ps_shows_the_zygote_tiers_and_the_sharing(tmp_path, make_function):
    server = Server(tmp_path / "data", "--backend", "zygote").start()
    try:
        server.deploy(make_function("hello", HELLO, preload=["json"]))
        json.loads(server.client.invoke("hello", b"{}"))
        rows = server.client.processes()
        kinds = {(r["kind"], r["function"]) for r in rows}
        assert {("zygote", "-"), ("runtime", "json"), ("template", "hello")} <= kinds
        instance = next(r for r in rows if r["kind"] == "instance")
        assert instance["tier"] == "template"
        # Pages shared with the template count in RSS in full, in PSS only in part.
        assert instance["pssKiB"] < instance["rssKiB"] * 0.6
    finally:
        server.stop()
