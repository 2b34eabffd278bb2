"""Schedules and the event bus as a user meets them: ``rate(1 second)`` fires about once a
second with EventBridge's Scheduled Event, two platforms on one registry fire each time once,
``catch_up`` decides what a stopped platform missed; events put on the bus (the API, boto3's
``events`` client) reach every function whose rule matches and no other, a bad entry fails in
its place, and only a key with the ``events`` scope may put them."""

from __future__ import annotations

import json
import signal
import time
import uuid

import boto3
import botocore.config
import pytest
import redis

from tests.system.conftest import Server
from tests.system.test_async import _function
from tests.system.test_triggers import REDIS, _service
from tests.system.test_triggers_api import _until

# Pushes each event it is given (as JSON) to its Redis list, the test's ledger.
RECORDER = """
    import json, os
    import redis

    ledger = redis.Redis.from_url(os.environ["LEDGER_URL"])

    def handler(event, context):
        ledger.rpush(os.environ["LEDGER_KEY"], json.dumps(event))
"""


EVERY_SECOND = 'type = "schedule"\nschedule = "rate(1 second)"\n'
BIG_ORDERS = (
    'type = "rule"\n'
    'pattern = {source = ["shop.orders"], detail = {amount = [{numeric = [">", 1000]}]}}\n'
)
ALL_ORDERS = 'type = "rule"\npattern = {source = [{prefix = "shop."}]}\n'


@pytest.fixture(autouse=True)
def _redis():
    _service(REDIS)


def _recorder(root, name: str, *triggers: str):  # type: ignore[no-untyped-def]
    ledger = f"mlambda-test:{name}:{uuid.uuid4().hex[:8]}"
    directory = _function(root, name, RECORDER, env={"LEDGER_URL": REDIS, "LEDGER_KEY": ledger})
    with (directory / "mlambda.toml").open("a") as toml:
        for table in triggers:
            toml.write("[[triggers]]\n" + table)
    return directory, ledger


def _events(ledger: str) -> list[dict]:
    return [json.loads(item) for item in redis.Redis.from_url(REDIS).lrange(ledger, 0, -1)]


def test_a_rate_of_one_second_fires_once_a_second_with_the_scheduled_event(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        directory, ledger = _recorder(tmp_path, "ticker", EVERY_SECOND)
        server.deploy(directory)
        _until(lambda: _events(ledger), timeout=10)
        start = len(_events(ledger))
        time.sleep(6)
        fired = len(_events(ledger)) - start
        assert 5 <= fired <= 7, fired
        event = _events(ledger)[-1]
        assert event["version"] == "0" and event["source"] == "aws.events"
        assert event["detail-type"] == "Scheduled Event" and event["detail"] == {}
        assert event["resources"][0].startswith("arn:aws:events:us-east-1:")
        times = [e["time"] for e in _events(ledger)]
        assert len(times) == len(set(times))  # one event per fire time
        (trigger,) = server.client.triggers("ticker")
        assert trigger["type"] == "schedule" and trigger["schedule"] == "rate(1 second)"
        assert "source" not in trigger and "batch_size" not in trigger
        assert trigger["status"]["state"] == "running"
    finally:
        server.stop()


def test_two_platforms_on_one_registry_fire_each_time_once(tmp_path):
    first = Server(tmp_path / "data").start()
    second = Server(tmp_path / "data").start()
    try:
        directory, ledger = _recorder(tmp_path, "shared", EVERY_SECOND + 'input = {job = "tick"}\n')
        first.deploy(directory)
        second.deploy(directory)  # unchanged: both run the same trigger
        _until(lambda: second.client.triggers("shared")[0]["status"]["state"] == "running")
        time.sleep(6)

        def fired() -> list[int]:
            both = (first.client.triggers("shared")[0], second.client.triggers("shared")[0])
            return [t["status"]["processed"] for t in both]

        queued = fired()
        assert 5 <= sum(queued) <= 8, queued  # about one a second, from either platform
        # Every fire queued runs, once: the handler never ran more often than fires were queued
        # (the events read before the counts, while the schedule goes on).
        _until(lambda: len(_events(ledger)) >= sum(queued))
        events = _events(ledger)
        assert len(events) <= sum(fired()), (len(events), fired())
        assert all(e == {"job": "tick"} for e in events)  # input replaces the event
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize("catch_up", ["latest", "none"])
def test_catch_up_decides_what_a_stopped_platform_missed(tmp_path, catch_up):
    server = Server(tmp_path / "data").start()
    table = f'type = "schedule"\nschedule = "rate(3 seconds)"\ncatch_up = "{catch_up}"\n'
    directory, ledger = _recorder(tmp_path, "nightly", table)
    server.deploy(directory)
    _until(lambda: _events(ledger), timeout=10)
    server.stop(signal.SIGKILL)
    stopped = time.time()
    time.sleep(7)  # two fires missed
    restarted = Server(tmp_path / "data")
    restarted.port, restarted.url = server.port, server.url
    restarted.start()
    try:
        time.sleep(1.5)  # the next regular fire is up to 3 s away
        late = [e for e in _events(ledger) if stopped + 0.5 < _epoch(e["time"]) < stopped + 7]
        if catch_up == "latest":
            assert len(late) == 1, late  # the last fire missed, once
        else:
            assert late == []
    finally:
        restarted.stop()


def _epoch(text: str) -> float:
    import calendar

    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


@pytest.fixture(scope="module")
def bus(tmp_path_factory):
    _service(REDIS)
    root = tmp_path_factory.mktemp("bus")
    server = Server(root / "data").start()
    big, big_ledger = _recorder(root, "big-orders", BIG_ORDERS)
    every, every_ledger = _recorder(root, "all-orders", ALL_ORDERS)
    server.deploy(big)
    server.deploy(every)
    yield server, big_ledger, every_ledger
    server.stop()


def _put(server: Server, *entries: dict, key: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return server.http("POST", "/v1/events", json={"Entries": list(entries)}, headers=headers)


def test_an_event_reaches_every_function_whose_rule_matches_and_no_other(bus):
    server, big, every = bus
    answer = _put(
        server,
        {"Source": "shop.orders", "DetailType": "Order", "Detail": json.dumps({"amount": 1500})},
        {"Source": "shop.orders", "DetailType": "Order", "Detail": json.dumps({"amount": 20})},
        {"Source": "bank.payments", "DetailType": "Payment", "Detail": "{}"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["FailedEntryCount"] == 0 and all("EventId" in e for e in body["Entries"])
    amounts = lambda ledger: sorted(e["detail"].get("amount", 0) for e in _events(ledger))  # noqa: E731
    _until(lambda: len(_events(every)) >= 2 and _events(big))
    time.sleep(0.5)
    assert amounts(big) == [1500]
    assert amounts(every) == [20, 1500]
    event = next(e for e in _events(big))
    assert event["id"] == body["Entries"][0]["EventId"]
    assert (event["source"], event["detail-type"], event["version"]) == (
        "shop.orders",
        "Order",
        "0",
    )
    assert event["account"] and event["region"] == "us-east-1" and event["time"].endswith("Z")
    (rule,) = server.client.triggers("big-orders")
    assert rule["status"]["state"] == "running" and rule["status"]["processed"] >= 1


def test_a_bad_entry_fails_in_its_place_and_the_others_go_on(bus):
    server, big, _ = bus
    before = len(_events(big))
    answer = _put(
        server,
        {"Source": "shop.orders", "DetailType": "Order", "Detail": "not json"},
        {"Source": "shop.orders", "Detail": "{}"},
        {"Source": "shop.orders", "DetailType": "Order", "Detail": json.dumps({"amount": 5000})},
    ).json()
    assert answer["FailedEntryCount"] == 2
    assert answer["Entries"][0]["ErrorCode"] == "MalformedDetail"
    assert answer["Entries"][1]["ErrorCode"] == "InvalidArgument"
    assert "DetailType" in answer["Entries"][1]["ErrorMessage"]
    assert "EventId" in answer["Entries"][2]
    _until(lambda: len(_events(big)) == before + 1)
    for body, says in (({"Entries": []}, "Entries"), ({"entries": [{}]}, "Entries"),
                       ([1], "JSON object")):  # fmt: skip
        refused = server.http("POST", "/v1/events", json=body)
        assert refused.status_code == 400 and says in refused.json()["errorMessage"]


def test_boto3_events_client_puts_events_signed_with_an_events_key(bus):
    server, big, _ = bus
    made = server.client.create_key({"name": "producer", "scopes": ["events"]})
    key_id, secret = made["id"], made["secretAccessKey"]
    client = boto3.client(
        "events",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    before = len(_events(big))
    answer = client.put_events(
        Entries=[{"Source": "shop.orders", "DetailType": "Order", "Detail": '{"amount": 1001}'}]
    )
    assert answer["FailedEntryCount"] == 0
    _until(lambda: len(_events(big)) == before + 1)
    assert _events(big)[-1]["detail"] == {"amount": 1001}

    invoker = server.client.create_key({"name": "invoker", "scopes": ["invoke"]})
    refused = _put(server, {"Source": "shop.orders", "DetailType": "O", "Detail": "{}"},
                   key=invoker["token"])  # fmt: skip
    assert refused.status_code == 403 and "events" in refused.json()["errorMessage"]
    assert _put(server, {"Source": "s", "DetailType": "d", "Detail": "{}"},
                key=made["token"]).status_code == 200  # fmt: skip


def test_the_cli_adds_a_rule_and_a_schedule_and_puts_an_event(bus):
    server, _, every = bus
    added = server.cli("trigger", "add", "all-orders", "--pattern", '{"source": ["cli.test"]}')
    assert added.returncode == 0, added.stderr
    scheduled = server.cli(
        "trigger", "add", "all-orders", "--schedule", "cron(0 2 * * ? *)",
        "--timezone", "Europe/Berlin", "--input", '{"job": "nightly"}',
    )  # fmt: skip
    assert scheduled.returncode == 0, scheduled.stderr
    listed = server.cli("triggers", "all-orders").stdout
    assert "cron(0 2 * * ? *) Europe/Berlin" in listed and '{"source":["cli.test"]}' in listed
    put = server.cli("event", "put", "--source", "cli.test", "--detail-type", "T",
                     "--detail", '{"x": 1}')  # fmt: skip
    assert put.returncode == 0, put.stderr
    event_id = put.stdout.strip()
    _until(lambda: any(e["id"] == event_id for e in _events(every)))
    bad = server.cli("event", "put", "--source", "cli.test", "--detail-type", "T",
                     "--detail", "[1]")  # fmt: skip
    assert bad.returncode == 1 and "MalformedDetail" in bad.stderr
    wrong = server.cli("trigger", "add", "all-orders", "--schedule", "cron(0 2 * * * *)")
    assert wrong.returncode != 0 and "?" in wrong.stderr
    for trigger_id in (added.stdout.strip(), scheduled.stdout.strip()):
        assert server.cli("trigger", "delete", trigger_id).returncode == 0
