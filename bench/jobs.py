"""Batch jobs: a job's throughput side by side with the same function's saturated sync
throughput, in one run.

    .venv/bin/python bench/jobs.py [--rows 50000] [--objects 1000]

The function scores card transactions with the fraud example's model (max_instances 2, one
per core). Per line: a CSV of `--rows` transactions, 100 rows a call, against sync calls of the
same 100-row payloads from 4 clients at once (the function saturated: both instances busy, calls
waiting). Per object: `--objects` files of one transaction in a folder, against sync calls of
one transaction. Goal: a job runs at >= 80% of the saturated sync rate (calls per second).
Writes the "jobs" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import io
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from results import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import write_function  # noqa: E402
from tests.system.conftest import Server  # noqa: E402

FRAUD = ROOT / "examples" / "fraud"
CATEGORIES = ["grocery", "fuel", "electronics", "travel", "restaurant", "online", "jewelry"]
HANDLER = """
from pathlib import Path

import joblib

bundle = joblib.load(Path(__file__).with_name("model.joblib"))
MODEL, CATEGORIES = bundle["model"], bundle["categories"]


def features(row):
    amount, category, hour, weekend, distance, present = row
    return [float(amount), CATEGORIES.index(category), int(hour), int(weekend),
            float(distance), int(present)]


def handler(event, context):
    rows = event["inputs"] if "inputs" in event else [event["row"]]
    scores = MODEL.predict_proba([features(r) for r in rows])[:, 1]
    return {"outputs": [round(float(s), 4) for s in scores]}
"""
SYNC_CLIENTS = 4
SYNC_SECONDS = 10.0


def rows(count: int) -> list[list[str]]:
    rng = random.Random(3)
    return [
        [f"{rng.lognormvariate(3.5, 1.2):.2f}", rng.choice(CATEGORIES), str(rng.randrange(24)),
         str(int(rng.random() < 0.3)), f"{rng.expovariate(1 / 15):.1f}",
         str(int(rng.random() < 0.5))]
        for _ in range(count)
    ]  # fmt: skip


def deploy(server: Server, root: Path) -> None:
    if not (FRAUD / "model.joblib").exists():
        subprocess.run([sys.executable, str(FRAUD / "train.py")], check=True)
    directory = write_function(root, "scorer", HANDLER, max_instances=2, timeout_s=30)
    shutil.copy(FRAUD / "model.joblib", directory / "model.joblib")
    server.deploy(directory)
    server.client.invoke("scorer", json.dumps({"inputs": rows(2)}).encode())  # warm


def sync_rate(server: Server, payload: bytes) -> float:
    """Calls per second with SYNC_CLIENTS callers for SYNC_SECONDS."""
    url = f"{server.url}/v1/functions/scorer/invoke"
    headers = {"Authorization": f"Bearer {server.key}"}
    deadline = time.monotonic() + SYNC_SECONDS

    def caller() -> int:
        calls = 0
        with httpx.Client(headers=headers, timeout=30) as client:
            while time.monotonic() < deadline:
                client.post(url, content=payload).raise_for_status()
                calls += 1
        return calls

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(SYNC_CLIENTS) as pool:
        total = sum(pool.map(lambda _: caller(), range(SYNC_CLIENTS)))
    return total / (time.monotonic() - start)


def job_rate(server: Server, body: dict) -> tuple[float, int]:
    """Items per second from the job's start to its end (its own clock)."""
    job = server.http("POST", "/v1/jobs", json=body).json()
    while job["state"] in ("queued", "running"):
        time.sleep(0.2)
        job = server.http("GET", f"/v1/jobs/{job['id']}").json()
    assert job["state"] == "succeeded", job
    return job["items"] / (job["finishedAt"] - job["startedAt"]), job["items"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--objects", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = Server(root / "data", "--backend", "zygote").start()
        try:
            deploy(server, root)
            table = rows(args.rows)
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(table)
            (root / "in").mkdir()
            (root / "in" / "rows.csv").write_text(text.getvalue())
            objects = root / "objects"
            objects.mkdir()
            for n, row in enumerate(table[: args.objects]):
                (objects / f"{n:05d}.json").write_text(json.dumps({"row": row}))
            results = []
            for per, payload, body in (
                ("line", {"inputs": table[:100]},
                 {"input": str(root / "in"), "per": "line", "rows_per_call": 100}),
                ("object", {"row": table[0]}, {"input": str(objects)}),
            ):  # fmt: skip
                sync = sync_rate(server, json.dumps(payload).encode())
                body = {"function": "scorer", "output": str(root / f"out-{per}"), **body}
                rate, items = job_rate(server, body)
                results.append((per, items, rate, sync))
                print(per, items, f"{rate:.1f}/s", f"sync {sync:.1f}/s", flush=True)
        finally:
            server.stop()
    lines = [
        "## Batch jobs: throughput against the function's saturated sync rate",
        "",
        f"{machine()}. `make bench-jobs`: the fraud model scoring transactions (max_instances",
        f"2). Per line: {args.rows:,} CSV rows, 100 a call; per object: {args.objects:,} files",
        "of one transaction. Sync: the same payloads from 4 clients at once for 10 s. Job: its",
        "items over the time from its start to its end.",
        "",
        "| per | items | job calls/s | sync calls/s | ratio (goal >= 80%) |",
        "|---|---|---|---|---|",
    ]
    for per, items, rate, sync in results:
        ratio = rate / sync
        lines.append(
            f"| {per} | {items:,} | {rate:,.1f} | {sync:,.1f} | "
            f"{ratio:.0%} {'met' if ratio >= 0.8 else 'not met'} |"
        )
    write_section("jobs", "\n".join(lines))


if __name__ == "__main__":
    main()
