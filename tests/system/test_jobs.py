"""Batch jobs as a user runs them: 10,000 CSV rows in mini-batches and 500 objects in a bucket,
``serve`` killed with SIGKILL in the middle and started again, every item in the output once,
in input order, and the manifest right; what a job refuses; failures named in the manifest; the
CLI's progress and summary, the jobs list and cancel."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests.system.brokers import MotoS3
from tests.system.conftest import Server
from tests.system.test_async import _function
from tests.system.test_triggers import REDIS, _service
from tests.system.test_triggers_api import _until

# A mini-batch of CSV rows [id, value]: one result per row; the first id of each call recorded.
DOUBLER = """
    import json, os, time
    import redis

    ledger = redis.Redis.from_url(os.environ["LEDGER_URL"])

    def handler(event, context):
        rows = event["inputs"]
        time.sleep(float(os.environ.get("PAUSE", "0")))
        ledger.rpush(os.environ["LEDGER_KEY"], rows[0][0])
        if rows[0][0] == "fail":
            raise ValueError("a row that fails")
        return {"outputs": [{"id": int(r[0]), "double": 2 * int(r[1])} for r in rows]}
"""
# One object ({"n": N}, or bytes that are not JSON): its square, or what it was given.
SQUARER = """
    import json, os, time
    import redis

    ledger = redis.Redis.from_url(os.environ["LEDGER_URL"])

    def handler(event, context):
        time.sleep(float(os.environ.get("PAUSE", "0")))
        if "n" not in event:
            return {"given": event}
        ledger.rpush(os.environ["LEDGER_KEY"], event["n"])
        if event["n"] < 0:
            raise ValueError(f"negative: {event['n']}")
        return {"n": event["n"], "square": event["n"] ** 2}
"""


@pytest.fixture(autouse=True)
def _redis():
    _service(REDIS)


def _deploy(server: Server, root: Path, name: str, code: str, pause: float = 0) -> str:
    ledger = f"mlambda-test:{name}:{uuid.uuid4().hex[:8]}"
    env = {"LEDGER_URL": REDIS, "LEDGER_KEY": ledger, "PAUSE": str(pause)}
    server.deploy(_function(root, name, code, env=env, max_instances=2, timeout_s=10))
    return ledger


def _ledger(ledger: str) -> list[str]:
    return [i.decode() for i in redis.Redis.from_url(REDIS).lrange(ledger, 0, -1)]


def _job(server: Server, job_id: str) -> dict:
    return server.http("GET", f"/v1/jobs/{job_id}").json()


def _restart(server: Server) -> Server:
    server.stop(signal.SIGKILL)
    again = Server(server.data_dir)
    again.port, again.url = server.port, server.url
    return again.start()


def test_10000_csv_rows_killed_mid_way_resume_and_come_out_once_in_order(tmp_path):
    server = Server(tmp_path / "data").start()
    ledger = _deploy(server, tmp_path, "doubler", DOUBLER, pause=0.05)
    rows = tmp_path / "in" / "rows.csv"
    rows.parent.mkdir()
    rows.write_text("".join(f"{n},{n * 3}\n" for n in range(10_000)))
    body = {"function": "doubler", "input": str(rows), "output": str(tmp_path / "out"),
            "per": "line", "rows_per_call": 50}  # fmt: skip
    created = server.http("POST", "/v1/jobs", json=body)
    assert created.status_code == 201, created.text
    job = created.json()
    assert (job["items"], job["state"]) == (200, "running") or job["state"] == "queued"
    _until(lambda: _job(server, job["id"])["done"] >= 60, timeout=60)
    server = _restart(server)  # kill -9 in the middle
    try:
        assert 60 <= _job(server, job["id"])["done"] < 200
        finished = _until(
            lambda: (j := _job(server, job["id"]))["state"] in ("succeeded", "failed") and j,
            timeout=120,
        )
        assert finished["state"] == "succeeded", finished
        assert (finished["done"], finished["failed"], finished["pending"]) == (200, 0, 0)
        lines = (tmp_path / "out" / "rows.csv.out").read_text().splitlines()
        assert [json.loads(line) for line in lines] == [
            {"id": n, "double": 6 * n} for n in range(10_000)
        ]
        calls = Counter(_ledger(ledger))
        assert set(calls) == {str(n) for n in range(0, 10_000, 50)}
        # Only calls running at the kill (4 at once), or finished in the last 50 ms and not
        # yet marked done, may have run twice (at least once).
        assert sum(calls.values()) - 200 <= 8, calls.most_common(3)
        manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
        assert manifest["state"] == "succeeded" and len(manifest["succeeded"]) == 200
        assert manifest["failed"] == [] and manifest["notRun"] == []
        assert manifest["succeeded"][:2] == ["rows.csv#0", "rows.csv#1"]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    store = MotoS3(tmp_path_factory.mktemp("moto")).start()
    yield store
    store.stop()


def test_500_objects_killed_mid_way_resume_and_each_result_is_written_once(
    tmp_path, moto, monkeypatch
):
    # The platform reads the store with boto3's own chain: here, the environment.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = moto.client()
    for bucket in ("jobs-in", "jobs-out"):
        s3.create_bucket(Bucket=bucket)
    for n in range(500):
        s3.put_object(Bucket="jobs-in", Key=f"in/{n:03d}.json", Body=json.dumps({"n": n}))
    s3.put_object(Bucket="jobs-in", Key="in/raw.bin", Body=b"\x00\x01 not json")
    server = Server(tmp_path / "data").start()
    ledger = _deploy(server, tmp_path, "squarer", SQUARER, pause=0.02)
    done = server.cli("batch", "squarer", "--input", "s3://jobs-in/in/", "--output",
                      "s3://jobs-out/results/", "--endpoint-url", moto.url,
                      "--no-wait")  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    _until(lambda: _job(server, job_id)["done"] >= 100, timeout=60)
    server = _restart(server)
    try:
        follow = server.cli("job", job_id)
        assert follow.returncode == 0 and f"id: {job_id}" in follow.stdout
        finished = _until(
            lambda: (j := _job(server, job_id))["state"] in ("succeeded", "failed") and j,
            timeout=120,
        )
        assert finished["state"] == "succeeded" and finished["done"] == 501, finished
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket="jobs-out")
            for item in page.get("Contents", [])
        ]
        assert len(keys) == 502  # 501 results and the manifest
        result = json.loads(
            s3.get_object(Bucket="jobs-out", Key="results/042.json.out")["Body"].read()
        )
        assert result == {"n": 42, "square": 1764}
        raw = json.loads(s3.get_object(Bucket="jobs-out", Key="results/raw.bin.out")["Body"].read())
        assert raw["given"] == {
            "key": "raw.bin",
            "body": "AAEgbm90IGpzb24=",
            "isBase64Encoded": True,
        }
        calls = Counter(_ledger(ledger))
        assert set(calls) == {str(n) for n in range(500)} and sum(calls.values()) - 500 <= 10
        manifest = json.loads(
            s3.get_object(Bucket="jobs-out", Key="results/_manifest.json")["Body"].read()
        )
        assert len(manifest["succeeded"]) == 501 and manifest["failed"] == []
    finally:
        server.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("jobs")
    server = Server(root / "data").start()
    server.root = root  # type: ignore[attr-defined]
    _deploy(server, root, "squarer", SQUARER)
    _deploy(server, root, "doubler", DOUBLER)
    _deploy(server, root, "slow", SQUARER, pause=0.05)
    yield server
    server.stop()


def test_failures_are_named_in_the_manifest_and_the_job_fails(served, tmp_path):
    folder = tmp_path / "objects"
    folder.mkdir()
    for n in (1, -2, 3):
        (folder / f"{n}.json").write_text(json.dumps({"n": n}))
    lines = tmp_path / "lines.csv"
    lines.write_text("1,1\nfail,0\n2,2\n")
    for body in (
        {"function": "squarer", "input": str(folder), "output": str(tmp_path / "out1")},
        {"function": "doubler", "input": str(lines), "output": str(tmp_path / "out2"),
         "per": "line", "rows_per_call": 1},
    ):  # fmt: skip
        job = served.http("POST", "/v1/jobs", json=body).json()
        finished = _until(lambda j=job: (s := _job(served, j["id"]))["state"] != "running" and s)
        assert finished["state"] == "failed" and finished["failed"] == 1, finished
        assert "1 items failed" in finished["error"]
        manifest = json.loads(Path(body["output"], "_manifest.json").read_text())
        (failure,) = manifest["failed"]
        assert "ValueError" in failure["error"] and len(manifest["succeeded"]) == 2
    assert failure["item"] == "lines.csv#1"
    assert not (tmp_path / "out2" / "lines.csv.out").exists()  # a file with a failed batch
    assert json.loads((tmp_path / "out1" / "3.json.out").read_text())["square"] == 9


IN, OUT = "/data/in/", "/data/out/"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"function": "nope", "input": IN, "output": OUT}, 404, "nope"),
        ({"function": "squarer", "input": "in/", "output": OUT}, 400, "must be absolute"),
        ({"function": "squarer", "input": IN, "output": IN + "out"}, 400, "inside input"),
        ({"function": "squarer", "input": "/nonexistent", "output": OUT}, 400, "neither"),
        ({"function": "squarer", "input": IN, "output": OUT, "per": "row"}, 400, "per"),
        ({"function": "squarer", "input": IN, "output": OUT, "rows_per_call": 0}, 400, "rows"),
        ({"function": "squarer", "input": IN, "output": OUT, "bogus": 1}, 400, "bogus"),
        ({"input": IN, "output": OUT}, 400, "function is required"),
        ({"function": "squarer", "input": "s3://no-such-bucket/in/", "output": OUT,
          "endpoint_url": "http://127.0.0.1:1"}, 400, "cannot be read"),
    ],
)  # fmt: skip
def test_a_bad_job_is_refused_with_what_is_wrong(served, body, status, says):
    refused = served.http("POST", "/v1/jobs", json=body)
    assert refused.status_code == status, refused.text
    assert says in refused.json()["errorMessage"]


def test_an_empty_input_is_refused(served, tmp_path):
    (tmp_path / "empty").mkdir()
    body = {"function": "doubler", "input": str(tmp_path / "empty"), "output": str(tmp_path / "o"),
            "per": "line"}  # fmt: skip
    refused = served.http("POST", "/v1/jobs", json=body)
    assert refused.status_code == 400 and "holds no .jsonl or .csv" in refused.text


def test_the_cli_runs_a_job_with_progress_lists_it_and_cancels_another(served, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("".join(f"{n},{n}\n" for n in range(300)))
    run = served.cli("batch", "doubler", "--input", str(rows), "--output", str(tmp_path / "out"),
                     "--per", "line", "--rows-per-call", "30")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "job " in run.stderr and "10 items" in run.stderr
    assert "succeeded: 10 of 10 items done, 0 failed" in run.stdout
    assert len((tmp_path / "out" / "rows.csv.out").read_text().splitlines()) == 300
    listed = served.cli("jobs")
    assert listed.returncode == 0 and "doubler" in listed.stdout and "succeeded" in listed.stdout

    slow = tmp_path / "slow"
    slow.mkdir()
    for n in range(200):
        (slow / f"{n}.json").write_text(json.dumps({"n": n}))
    started = served.cli("batch", "slow", "--input", str(slow), "--output",
                         str(tmp_path / "slow-out"), "--concurrency", "1", "--no-wait")  # fmt: skip
    job_id = started.stdout.strip()
    cancelled = served.cli("job", "cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert _job(served, job_id)["state"] == "cancelled"
    time.sleep(0.5)
    manifest = json.loads((tmp_path / "slow-out" / "_manifest.json").read_text())
    assert manifest["state"] == "cancelled" and manifest["notRun"]
    again = served.cli("job", "cancel", job_id)
    assert again.returncode != 0 and "cancelled already" in again.stderr
