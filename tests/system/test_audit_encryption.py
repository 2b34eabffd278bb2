"""The audit log records control-plane calls and refusals and detects an edit; artifacts and
secrets are encrypted at rest, and the master key rotates without downtime."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.system.conftest import Server

MARKER = "plaintext-marker-7f3a9c"
SECRET = "s3cret-value-51d2e8"


def _function(root: Path) -> Path:
    directory = root / "keeper"
    directory.mkdir(parents=True)
    (directory / "mlambda.toml").write_text(
        textwrap.dedent(
            f"""\
            [function]
            name = "keeper"
            handler = "app:handler"
            [function.env]
            MODE = "test"
            [function.secrets]
            DB_PASSWORD = "{SECRET}"
            """
        )
    )
    (directory / "app.py").write_text(
        textwrap.dedent(
            f"""\
            import os
            MARK = "{MARKER}"
            def handler(event, context):
                return {{"secret_ok": os.environ["DB_PASSWORD"] == "{SECRET}",
                         "mode": os.environ["MODE"]}}
            """
        )
    )
    (directory / "weights.txt").write_text(MARKER * 100)
    return directory


@pytest.fixture
def server(tmp_path):
    running = Server(tmp_path / "data").start()
    yield running
    running.stop()


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_no_artifact_holds_its_plaintext_and_secrets_never_come_back(server, tmp_path):
    server.deploy(_function(tmp_path / "src"))
    assert json.loads(server.client.invoke("keeper", b"{}")) == {"secret_ok": True, "mode": "test"}
    artifacts = _files(server.data_dir / "artifacts")
    assert artifacts
    for path in artifacts:
        assert MARKER.encode() not in path.read_bytes(), path
        assert SECRET.encode() not in path.read_bytes(), path
    shown = json.dumps(server.client.get("keeper"))
    assert SECRET not in shown and "DB_PASSWORD" in shown
    assert SECRET.encode() not in (server.data_dir / "registry.db").read_bytes()
    assert SECRET not in "".join(server.client.logs("keeper", tail=1000))
    assert SECRET not in server.log.read_text()


def test_rotating_the_master_key_keeps_everything_readable(server, tmp_path):
    server.deploy(_function(tmp_path / "src"))
    key = server.client.create_key({"name": "bot", "scopes": ["invoke"]})
    before = (server.data_dir / "master.key").read_text()
    cli = server.cli("keys", "rotate-master")
    assert cli.returncode == 0, cli.stderr
    assert "re-wrapped" in cli.stdout
    after = (server.data_dir / "master.key").read_text()
    assert after != before
    assert [line for line in after.splitlines() if not line.startswith("#")] != []
    # The old key is gone from the file, and everything still opens after a restart.
    old = {line for line in before.splitlines() if not line.startswith("#")}
    assert not old & set(after.splitlines())
    server.stop()
    server.start()
    assert json.loads(server.client.invoke("keeper", b"{}"))["secret_ok"] is True
    assert server.deploy(_function(tmp_path / "again"))["changed"] is False
    signed = httpx.post(
        f"{server.url}/v1/functions/keeper/invoke",
        headers={"Authorization": f"Bearer {key['token']}"},
    )
    assert signed.status_code == 200


def test_the_audit_log_records_calls_and_refusals_and_verify_finds_an_edit(server, tmp_path):
    server.deploy(_function(tmp_path / "src"))
    key = server.client.create_key({"name": "bot", "scopes": ["read"]})
    server.client.revoke_key(key["id"])
    assert (
        httpx.get(
            f"{server.url}/v1/functions", headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    server.client.remove("keeper")
    entries = server.client.audit()
    actions = [(e["action"], e["outcome"]) for e in entries]
    assert actions == [
        ("function.deploy", "ok"),
        ("keys.create", "ok"),
        ("keys.revoke", "ok"),
        ("auth.refused", "denied"),
        ("function.delete", "ok"),
    ]
    assert entries[0]["target"] == "keeper" and entries[0]["keyId"] == "admin"
    assert entries[2]["target"] == key["id"]
    assert all(key["token"] not in json.dumps(e) for e in entries)

    verified = server.cli("audit", "--verify")
    assert verified.returncode == 0 and "5 entries" in verified.stdout
    with sqlite3.connect(server.data_dir / "registry.db") as db:
        db.execute("UPDATE audit_log SET outcome = 'ok' WHERE seq = 4")
    edited = server.cli("audit", "--verify")
    assert edited.returncode == 1
    assert "entry 4" in edited.stderr


def test_audit_is_admin_only(server):
    key = server.client.create_key({"name": "reader", "scopes": ["read", "deploy"]})
    for path in ("/v1/audit", "/v1/keys"):
        response = httpx.get(
            f"{server.url}{path}", headers={"Authorization": f"Bearer {key['token']}"}
        )
        assert response.status_code == 403
