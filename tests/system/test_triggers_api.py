"""Triggers as a user manages them: [[triggers]] in mlambda.toml kept in step with deploys, the
API and the CLI (add, list, show, disable, enable, delete), what each refuses, who may do it,
and a broker's password never shown."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.conftest import write_function
from tests.system.conftest import Server

RECORDER = """
    import json

    def handler(event, context):
        bodies = [json.loads(r["body"]) for r in event["Records"]]
        print("GOT " + json.dumps(bodies))
        return {"batchItemFailures": []}
"""
SECRET_SOURCE = "amqp://scorer:s3cr3t-pass@127.0.0.1:1/%2F?queue=orders"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("triggers-api")
    server = Server(root / "data", "--backend", "zygote").start()
    server.root = root  # type: ignore[attr-defined]
    server.deploy(write_function(root, "recorder", RECORDER))
    yield server
    server.stop()


def _with_triggers(server: Server, name: str, *tables: str, **config):  # type: ignore[no-untyped-def]
    directory = write_function(server.root, name, RECORDER, **config)  # type: ignore[attr-defined]
    with (directory / "mlambda.toml").open("a") as toml:
        for table in tables:
            toml.write("[[triggers]]\n" + table)
    return directory


def _depth(server: Server, queue: str) -> int:
    return {q["name"]: q["messages"] for q in server.client.queues()}.get(queue, 0)


def _until(check, timeout: float = 20):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("not in time")


def test_the_cli_adds_lists_disables_enables_and_deletes_a_trigger(served):
    added = served.cli(
        "trigger", "add", "recorder", "--source", "mlambda://cli-orders",
        "--batch-size", "5", "--report-batch-item-failures",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    trigger_id = added.stdout.strip()
    listed = served.cli("triggers", "recorder")
    assert trigger_id in listed.stdout and "mlambda://cli-orders" in listed.stdout
    _until(lambda: served.client.trigger(trigger_id)["status"]["state"] == "running")
    for n in range(12):
        served.client.send_message("cli-orders", json.dumps({"n": n}).encode())
    _until(lambda: served.client.trigger(trigger_id)["status"]["processed"] == 12)
    shown = served.client.trigger(trigger_id)
    assert shown["batch_size"] == 5 and shown["report_batch_item_failures"] is True
    assert shown["status"]["batches"] >= 3  # never more than five messages a batch

    disabled = served.cli("trigger", "disable", trigger_id)
    assert disabled.returncode == 0, disabled.stderr
    assert served.client.trigger(trigger_id)["status"]["state"] == "disabled"
    served.client.send_message("cli-orders", b'{"n": 100}')
    time.sleep(1.5)
    assert _depth(served, "cli-orders") == 1  # waits at the queue while disabled
    assert served.cli("trigger", "enable", trigger_id).returncode == 0
    _until(lambda: _depth(served, "cli-orders") == 0)
    assert served.client.trigger(trigger_id)["status"]["processed"] >= 1

    show = served.cli("trigger", "show", trigger_id)
    assert "status.state: running" in show.stdout
    assert served.cli("trigger", "delete", trigger_id).returncode == 0
    missing = served.cli("trigger", "show", trigger_id)
    assert missing.returncode != 0 and "no trigger" in missing.stderr


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"type": "queue", "source": "mlambda://q", "batchsize": 5}, 400, "batch_size"),
        ({"type": "queue", "source": "kafka://h:9092?topic=t"}, 400, "scheme must be one of"),
        ({"type": "queue", "source": "mlambda://q", "batch_size": 0}, 400, "between 1"),
        ({"type": "queue", "source": "amqp://h/"}, 400, "names no queue"),
        ({"type": "stream", "source": "mqtt://h?topic=t"}, 400, "mqtt serves type = 'queue'"),
        ({"type": "queue", "source": "mlambda://q", "on_failure": "mlambda://f"}, 400, "stream"),
        ({"source": "mlambda://q"}, 400, "type must be"),
        ([1, 2], 400, "object"),
    ],
)
def test_a_bad_trigger_is_refused_with_what_is_wrong(served, body, status, says):
    response = served.http("POST", "/v1/functions/recorder/triggers", json=body)
    assert response.status_code == status, response.text
    assert says in response.text
    assert served.client.triggers("recorder") == []  # nothing was made


def test_unknown_functions_and_triggers_are_404(served):
    body = {"type": "queue", "source": "mlambda://q"}
    assert served.http("POST", "/v1/functions/nope/triggers", json=body).status_code == 404
    assert served.http("GET", "/v1/functions/nope/triggers").status_code == 404
    for method, path in (
        ("GET", "/v1/triggers/nope"),
        ("DELETE", "/v1/triggers/nope"),
        ("POST", "/v1/triggers/nope/disable"),
    ):
        assert served.http(method, path).status_code == 404


def test_config_triggers_follow_deploys_and_never_show_the_password(served):
    table = f'type = "queue"\nsource = "{SECRET_SOURCE}"\n'
    served.deploy(_with_triggers(served, "configured", table))
    [trigger] = served.client.triggers("configured")
    assert trigger["origin"] == "config"
    assert trigger["source"] == "amqp://scorer:***@127.0.0.1:1/%2F?queue=orders"
    # Nothing listens on port 1: the trigger says why it is not consuming.
    failing = _until(
        lambda: (t := served.client.trigger(trigger["id"]))["status"]["lastError"] and t
    )
    assert failing["status"]["state"] == "reconnecting"
    everything = json.dumps(
        [
            served.client.triggers("configured"),
            served.client.get("configured"),
            served.http("GET", "/metrics").text,
        ]
    )
    assert "s3cr3t-pass" not in everything
    assert "s3cr3t-pass" not in served.log.read_text()
    assert "s3cr3t-pass" not in (served.data_dir / "registry.db").read_bytes().decode("latin-1")

    refused = served.http("DELETE", f"/v1/triggers/{trigger['id']}")
    assert refused.status_code == 409 and "mlambda.toml" in refused.text
    # The same trigger in the next deploy keeps its id (and the state the API gave it).
    served.client.set_trigger_enabled(trigger["id"], False)
    served.deploy(_with_triggers(served, "configured", table, description="v2"))
    [same] = served.client.triggers("configured")
    assert same["id"] == trigger["id"] and same["enabled"] is False
    served.deploy(_with_triggers(served, "configured", table + "batch_size = 20\n"))
    [changed] = served.client.triggers("configured")
    assert changed["id"] == trigger["id"] and changed["enabled"] is True  # its settings changed
    served.deploy(_with_triggers(served, "configured"))
    assert served.client.triggers("configured") == []


def test_a_bad_trigger_in_mlambda_toml_refuses_the_deploy(served):
    directory = _with_triggers(served, "badly", 'type = "queue"\nsource = "mlambda://a b"\n')
    response = served.http(
        "PUT",
        "/v1/functions/badly",
        content=__import__("mlambda.bundle", fromlist=["pack"]).pack(directory),
    )
    assert response.status_code == 400, response.text
    assert "triggers[0]" in response.text
    assert served.http("GET", "/v1/functions/badly").status_code == 404


def test_removing_a_function_removes_its_triggers(served):
    served.deploy(_with_triggers(served, "short-lived"))
    made = served.client.add_trigger("short-lived", {"type": "queue", "source": "mlambda://sl"})
    served.client.remove("short-lived")
    assert served.http("GET", f"/v1/triggers/{made['id']}").status_code == 404
    served.deploy(_with_triggers(served, "short-lived"))
    assert served.client.triggers("short-lived") == []


BUSY = """
    import time

    def handler(event, context):
        if "Records" in event:
            time.sleep(0.5)
        return {"sync": "Records" not in event}
"""


def test_sync_calls_keep_their_share_of_a_function_a_trigger_keeps_busy(served):
    directory = write_function(served.root, "busy", BUSY, max_instances=1)  # type: ignore[attr-defined]
    with (directory / "mlambda.toml").open("a") as toml:
        toml.write(
            '[[triggers]]\ntype = "queue"\nsource = "mlambda://busy-q"\n'
            "batch_size = 1\nmax_concurrency = 4\n"
        )
    served.deploy(directory)
    for n in range(12):
        served.client.send_message("busy-q", json.dumps({"n": n}).encode())
    # Four batches at once, for one instance: three of them wait in the pool.
    _until(lambda: served.client.triggers("busy")[0]["status"]["concurrency"] >= 4)
    started = time.monotonic()
    answer = json.loads(served.client.invoke("busy", b"{}"))
    waited = time.monotonic() - started
    assert answer == {"sync": True}
    # It waits for the batch running now (0.5 s), not for the three queued before it (2 s).
    assert waited < 1.2, waited


def test_a_key_acts_on_the_triggers_of_the_functions_it_covers_only(served):
    made = served.client.add_trigger("recorder", {"type": "queue", "source": "mlambda://keyed"})
    reader = served.client.create_key({"name": "r", "scopes": ["read"]})["token"]
    other = served.client.create_key({"name": "o", "scopes": ["deploy:other*"]})["token"]
    owner = served.client.create_key({"name": "d", "scopes": ["deploy:recorder"]})["token"]

    def call(token: str, method: str, path: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, served.url + path, headers=headers, timeout=30).status_code

    path = f"/v1/triggers/{made['id']}"
    assert call(reader, "GET", path) == 200
    assert call(reader, "POST", path + "/disable") == 403
    assert call(other, "DELETE", path) == 403
    assert call(other, "POST", path + "/disable") == 403
    assert call(other, "POST", "/v1/functions/recorder/triggers") == 403
    assert call(owner, "POST", path + "/disable") == 200
    assert call(owner, "DELETE", path) == 204
    entries = served.client.audit(action="trigger.delete")
    assert entries and entries[-1]["target"] == "recorder"
