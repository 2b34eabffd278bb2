"""Object triggers as a user meets them, against a real S3 protocol server (moto's, started by
the test) and a local folder: uploads become invocations with S3's event, a handler written for
Lambda reads and writes with plain boto3, a restart neither fires old objects again nor misses
those that came while the platform was down, notifications posted by a store are taken once,
and only a key with the ``events`` scope may post them."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections import Counter

import pytest
import redis

from tests.system.brokers import MotoS3
from tests.system.conftest import Server
from tests.system.test_async import _function
from tests.system.test_triggers import REDIS, _service
from tests.system.test_triggers_api import _until

# Records each record's key and event name; reads each created object with plain boto3 and
# writes its result beside it in the results bucket (the endpoint and keys from the trigger).
SCORER = """
    import json, os, urllib.parse
    import boto3, redis

    s3 = boto3.client("s3")
    ledger = redis.Redis.from_url(os.environ["LEDGER_URL"])

    def handler(event, context):
        for record in event["Records"]:
            bucket = record["s3"]["bucket"]["name"]
            key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
            ledger.rpush(os.environ["LEDGER_KEY"], json.dumps([key, record["eventName"]]))
            if record["eventName"].startswith("ObjectCreated") and bucket != "drop":
                body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                result = {"n": body["n"], "score": body["n"] * 2, "record": record}
                s3.put_object(Bucket="results", Key=key + ".out", Body=json.dumps(result))
"""


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    _service(REDIS)
    store = MotoS3(tmp_path_factory.mktemp("moto")).start()
    yield store
    store.stop()


@pytest.fixture
def s3(moto):
    client = moto.client()
    for bucket in ("photos", "results"):
        client.create_bucket(Bucket=bucket)
    yield client
    for bucket in ("photos", "results"):
        for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)


def _deploy(server: Server, root, name: str, trigger: str) -> str:  # type: ignore[no-untyped-def]
    ledger = f"mlambda-test:{name}:{uuid.uuid4().hex[:8]}"
    env = {"LEDGER_URL": REDIS, "LEDGER_KEY": ledger}
    directory = _function(root, name, SCORER, env=env, max_instances=4)
    with (directory / "mlambda.toml").open("a") as toml:
        toml.write("[[triggers]]\n" + trigger)
    server.deploy(directory)
    _until(lambda: server.client.triggers(name)[0]["status"]["state"] == "running")
    return ledger


def _watch(moto: MotoS3, **more: str) -> str:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in more.items())
    return (
        f'type = "object"\nsource = "s3://photos/in/"\nendpoint_url = "{moto.url}"\n'
        'access_key_id = "testing"\nsecret_access_key = "s3cr3t-for-moto"\nsuffix = ".json"\n'
        f"poll_interval_s = 0.3\n{extra}"
    )


def _ledger(ledger: str) -> list[tuple[str, str]]:
    return [tuple(json.loads(i)) for i in redis.Redis.from_url(REDIS).lrange(ledger, 0, -1)]


def _upload(s3, keys) -> None:  # type: ignore[no-untyped-def]
    for n, key in keys:
        s3.put_object(Bucket="photos", Key=key, Body=json.dumps({"n": n}).encode())


def _results(s3) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="results"):
        for item in page.get("Contents", []):
            found[item["Key"]] = item
    return found


def test_200_uploads_are_200_invocations_that_read_and_write_with_plain_boto3(tmp_path, moto, s3):
    _upload(s3, [(-1, "in/before.json")])  # there before the trigger: fires nothing
    server = Server(tmp_path / "data").start()
    try:
        ledger = _deploy(server, tmp_path, "scorer", _watch(moto))
        keys = [(n, f"in/img-{n:03d}.json") for n in range(199)] + [
            (199, "in/with space+plus.json")
        ]
        _upload(s3, keys)
        _upload(s3, [(0, "in/notes.txt"), (0, "out/img.json")])  # another suffix, prefix
        _until(lambda: len(_ledger(ledger)) >= 200, timeout=60)
        time.sleep(1.5)  # anything more would show now
        fired = Counter(key for key, _ in _ledger(ledger))
        assert set(fired) == {key for _, key in keys}
        assert all(count == 1 for count in fired.values()), fired.most_common(3)
        _until(lambda: len(_results(s3)) == 200, timeout=60)
        result = json.loads(
            s3.get_object(Bucket="results", Key="in/with space+plus.json.out")["Body"].read()
        )
        record = result["record"]
        assert (result["n"], result["score"]) == (199, 398)
        assert record["eventVersion"] == "2.1" and record["eventSource"] == "aws:s3"
        assert record["eventName"] == "ObjectCreated:Put" and record["awsRegion"] == "us-east-1"
        assert record["eventTime"].endswith("Z")
        assert record["s3"]["bucket"] == {
            "name": "photos",
            "ownerIdentity": {"principalId": "mlambda"},
            "arn": "arn:aws:s3:::photos",
        }
        obj = record["s3"]["object"]
        assert obj["key"] == "in/with+space%2Bplus.json"  # URL-encoded, as S3 sends it
        head = s3.head_object(Bucket="photos", Key="in/with space+plus.json")
        assert obj["size"] == head["ContentLength"] and obj["eTag"] == head["ETag"].strip('"')
        assert obj["sequencer"]
        (trigger,) = server.client.triggers("scorer")
        assert trigger["secret_access_key"] == "***" and trigger["suffix"] == ".json"
        assert "s3cr3t-for-moto" not in (tmp_path / "data" / "registry.db").read_bytes().decode(
            "latin-1"
        )
    finally:
        server.stop()


def test_a_restart_fires_what_changed_while_down_and_nothing_it_had_seen(tmp_path, moto, s3):
    server = Server(tmp_path / "data").start()
    ledger = _deploy(server, tmp_path, "scorer", _watch(moto, events=["created", "removed"]))
    _upload(s3, [(n, f"in/a-{n}.json") for n in range(30)])
    _until(lambda: len(_ledger(ledger)) >= 30, timeout=60)
    time.sleep(1)
    server.stop(signal.SIGKILL)
    # While it is down: new objects, one overwritten with new content, one deleted.
    _upload(s3, [(n, f"in/b-{n}.json") for n in range(20)] + [(1000, "in/a-0.json")])
    s3.delete_object(Bucket="photos", Key="in/a-1.json")
    restarted = Server(tmp_path / "data")
    restarted.port, restarted.url = server.port, server.url
    restarted.start()
    try:
        _until(lambda: len(_ledger(ledger)) >= 30 + 22, timeout=60)
        time.sleep(1.5)
        events = Counter(_ledger(ledger))
        assert sum(events.values()) == 52, events
        assert events[("in/a-0.json", "ObjectCreated:Put")] == 2  # its new content fired again
        assert events[("in/a-1.json", "ObjectRemoved:Delete")] == 1
        assert all(events[(f"in/b-{n}.json", "ObjectCreated:Put")] == 1 for n in range(20))
    finally:
        restarted.stop()


def _notification(s3, key: str, minio: bool = False) -> dict:  # type: ignore[no-untyped-def]
    head = s3.head_object(Bucket="photos", Key=key)
    record = {
        "eventVersion": "2.0" if minio else "2.1",
        "eventSource": "minio:s3" if minio else "aws:s3",
        "eventTime": "2026-12-07T10:00:00.000Z",
        "eventName": "s3:ObjectCreated:Put" if minio else "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": "photos", "arn": "arn:aws:s3:::photos"},
            "object": {
                "key": key.replace(" ", "+"),
                "size": head["ContentLength"],
                "eTag": head["ETag"].strip('"'),
                "sequencer": uuid.uuid4().hex[:16].upper(),
            },
        },
    }
    body = {"Records": [record]}
    if minio:
        body.update(EventName="s3:ObjectCreated:Put", Key=f"photos/{key}")
    return body


def test_notifications_from_a_store_are_taken_once_with_an_events_key(tmp_path, moto, s3):
    server = Server(tmp_path / "data").start()
    try:
        ledger = _deploy(server, tmp_path, "notified", _watch(moto, mode="notify"))
        _upload(s3, [(1, "in/one.json"), (2, "in/two words.json"), (3, "in/three.txt")])
        key = server.client.create_key({"name": "store", "scopes": ["events"]})["token"]
        post = lambda body, token=key: server.http(  # noqa: E731
            "POST", "/v1/events/s3", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        aws = _notification(s3, "in/one.json")
        answer = post(aws)
        assert answer.status_code == 200, answer.text
        assert answer.json()["records"] == 1 and len(answer.json()["invocations"]) == 1
        assert post(aws).status_code == 200  # the store sent it again: one invocation
        assert post(_notification(s3, "in/two words.json", minio=True)).status_code == 200
        skipped = post(_notification(s3, "in/three.txt")).json()  # not the trigger's suffix
        assert skipped == {"records": 1, "invocations": []}
        assert post({"Service": "Amazon S3", "Event": "s3:TestEvent"}).json()["records"] == 0
        _until(lambda: len(_results(s3)) == 2)
        time.sleep(1)
        assert sorted(_ledger(ledger)) == [
            ("in/one.json", "ObjectCreated:Put"),
            ("in/two words.json", "ObjectCreated:Put"),
        ]
        record = json.loads(
            s3.get_object(Bucket="results", Key="in/two words.json.out")["Body"].read()
        )["record"]
        assert (record["eventVersion"], record["eventSource"]) == ("2.1", "aws:s3")
        assert server.client.triggers("notified")[0]["status"]["processed"] == 2

        invoker = server.client.create_key({"name": "i", "scopes": ["invoke"]})["token"]
        assert post(aws, invoker).status_code == 403
        for bad in ({"Records": "x"}, {"Records": [{"eventName": "ObjectCreated:Put"}]}):
            refused = post(bad)
            assert refused.status_code == 400, refused.text
            assert "Records" in refused.json()["errorMessage"]
    finally:
        server.stop()


def test_a_folder_is_watched_files_created_and_removed(tmp_path):
    _service(REDIS)
    drop = tmp_path / "drop"
    (drop / "sub").mkdir(parents=True)
    (drop / "old.csv").write_text("there before")
    server = Server(tmp_path / "data").start()
    try:
        trigger = (
            f'type = "object"\nsource = "file://{drop}/"\nsuffix = ".csv"\n'
            'events = ["created", "removed"]\n'
        )
        ledger = _deploy(server, tmp_path, "folder", trigger)
        for name in ("a.csv", "sub/b.csv", "c.txt"):
            partial = drop / f".{os.path.basename(name)}.part"  # written, then renamed
            partial.write_text("1,2,3\n")
            partial.rename(drop / name)
        _until(lambda: len(_ledger(ledger)) >= 2, timeout=20)
        (drop / "a.csv").unlink()
        _until(lambda: len(_ledger(ledger)) >= 3, timeout=20)
        time.sleep(1.5)
        assert sorted(_ledger(ledger)) == [
            ("a.csv", "ObjectCreated:Put"),
            ("a.csv", "ObjectRemoved:Delete"),
            ("sub/b.csv", "ObjectCreated:Put"),
        ]
    finally:
        server.stop()


def test_a_kill_in_the_middle_of_a_flow_loses_nothing(tmp_path, moto, s3):
    server = Server(tmp_path / "data").start()
    directory_ledger = _deploy(server, tmp_path, "scorer", _watch(moto))
    _upload(s3, [(n, f"in/m-{n:03d}.json") for n in range(150)])
    _until(lambda: len(_ledger(directory_ledger)) >= 30, timeout=60)
    server.stop(signal.SIGKILL)  # some listed and queued, some not yet seen
    restarted = Server(tmp_path / "data")
    restarted.port, restarted.url = server.port, server.url
    restarted.start()
    try:
        _until(lambda: len({k for k, _ in _ledger(directory_ledger)}) == 150, timeout=90)
        time.sleep(1.5)
        fired = Counter(key for key, _ in _ledger(directory_ledger))
        # At least once: only an invocation running at the kill (4 instances), or finished
        # with its outcome not yet committed (an attempt frees its instance before its outcome
        # is written, so at most as many again), may have run again.
        duplicates = sum(fired.values()) - 150
        assert duplicates <= 8, fired.most_common(10)
        assert len(_results(s3)) == 150
    finally:
        restarted.stop()
