"""The upload-to-prediction pipeline, end to end, with one command (``make pipeline``):

1. starts an S3 server on 127.0.0.1 (moto's; point ``--endpoint`` at MinIO instead) and
   ``mlambda serve`` with a data folder of its own;
2. deploys ``scorer/`` (the fraud example's model, with an object trigger on s3://uploads/in/);
3. uploads files of card transactions with plain boto3;
4. waits for each file's result in s3://results/ and prints a summary: files, transactions,
   blocked, and the time from upload to result.

    python examples/pipeline/run.py [--files 50] [--rows 200] [--endpoint URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

HERE = Path(__file__).resolve().parent
FRAUD = HERE.parent / "fraud"
KEYS = {"aws_access_key_id": "pipeline", "aws_secret_access_key": "pipeline-secret"}
CATEGORIES = ["grocery", "fuel", "electronics", "travel", "restaurant", "online", "jewelry"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited (code {process.returncode})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start in 30 s")


def transactions(rng: random.Random, rows: int, file: int) -> str:
    lines = []
    for n in range(rows):
        txn = {
            "transaction_id": f"f{file}-t{n}",
            "amount": round(rng.lognormvariate(3.5, 1.2), 2),
            "merchant_category": rng.choice(CATEGORIES),
            "hour": rng.randrange(24),
            "is_weekend": rng.random() < 0.3,
            "distance_km": round(rng.expovariate(1 / 15), 1),
            "card_present": rng.random() < 0.5,
        }
        lines.append(json.dumps(txn) + "\n")
    return "".join(lines)


def bundle(work: Path, endpoint: str) -> Path:
    """scorer/ with the fraud model beside it and the trigger pointed at ``endpoint``."""
    model = FRAUD / "model.joblib"
    if not model.exists():
        subprocess.run([sys.executable, str(FRAUD / "train.py")], check=True)
    scorer = Path(shutil.copytree(HERE / "scorer", work / "batch-scorer"))
    shutil.copy(model, scorer / "model.joblib")
    toml = scorer / "mlambda.toml"
    toml.write_text(toml.read_text().replace("http://127.0.0.1:9000", endpoint))
    return scorer


def run(args: argparse.Namespace, work: Path) -> int:
    processes: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLAMBDA_")}
    try:
        endpoint = args.endpoint
        if endpoint is None:
            port = free_port()
            endpoint = f"http://127.0.0.1:{port}"
            moto = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
            log = (work / "s3.log").open("wb")
            processes.append(subprocess.Popen(moto, stdout=log, stderr=subprocess.STDOUT))
            wait_for(endpoint, processes[-1], "the S3 server")
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS)
        for name in ("uploads", "results"):
            s3.create_bucket(Bucket=name)
        url = f"http://127.0.0.1:{free_port()}"
        serve = [sys.executable, "-m", "mlambda", "serve", "--port", url.rsplit(":", 1)[1]]
        serve += ["--data-dir", str(work / "data"), "--log-level", "warning"]
        serve += ["--deploy", str(bundle(work, endpoint))]
        log = (work / "serve.log").open("wb")
        processes.append(subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT, env=env))
        wait_for(url + "/healthz", processes[-1], "mlambda serve")
        print(f"mlambda at {url}, S3 at {endpoint}: batch-scorer watches s3://uploads/in/")
        return pipeline(args, s3, url, work)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


def _trigger_running(url: str, work: Path) -> bool:
    import httpx

    key = (work / "data" / "admin.key").read_text().strip()
    answer = httpx.get(
        f"{url}/v1/functions/batch-scorer/triggers", headers={"Authorization": f"Bearer {key}"}
    )
    return (
        answer.status_code == 200 and answer.json()["triggers"][0]["status"]["state"] == "running"
    )


def pipeline(args: argparse.Namespace, s3, url: str, work: Path) -> int:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while not _trigger_running(url, work):
        if time.monotonic() > deadline:
            raise SystemExit("the trigger did not start: see " + str(work / "serve.log"))
        time.sleep(0.1)
    rng = random.Random(7)
    uploaded: dict[str, float] = {}
    started = time.monotonic()
    for file in range(args.files):
        key = f"in/transactions-{file:04d}.jsonl"
        s3.put_object(Bucket="uploads", Key=key, Body=transactions(rng, args.rows, file).encode())
        uploaded[key] = time.time()
    print(f"uploaded {args.files} files of {args.rows} transactions")
    done: dict[str, float] = {}
    deadline = time.monotonic() + args.timeout
    while len(done) < len(uploaded) and time.monotonic() < deadline:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="results", Prefix="in/"):
            for item in page.get("Contents", []):
                # When seen here (S3 keeps LastModified to the second): within 0.1 s.
                done.setdefault(item["Key"].removesuffix(".out"), time.time())
        time.sleep(0.1)
    return summary(s3, uploaded, done, time.monotonic() - started)


def summary(s3, uploaded: dict[str, float], done: dict[str, float], wall: float) -> int:  # type: ignore[no-untyped-def]
    rows = blocked = 0
    for key in done:
        body = s3.get_object(Bucket="results", Key=key + ".out")["Body"].read().decode()
        results = [json.loads(line) for line in body.splitlines()]
        rows += len(results)
        blocked += sum(r["action"] == "block" for r in results)
    latencies = sorted(max(0.0, done[k] - uploaded[k]) for k in done if k in uploaded)
    print(f"files scored:        {len(done)} of {len(uploaded)}")
    print(f"transactions scored: {rows} ({blocked} blocked)")
    if latencies:
        p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
        print(f"upload -> result:    p50 {statistics.median(latencies):.2f} s, p95 {p95:.2f} s")
    print(f"wall time:           {wall:.1f} s")
    return 0 if len(done) == len(uploaded) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=50, help="files to upload (default 50)")
    parser.add_argument("--rows", type=int, default=200, help="transactions per file")
    parser.add_argument("--endpoint", help="an S3 server already running (its buckets are made)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlambda-pipeline-") as work:
        return run(args, Path(work))


if __name__ == "__main__":
    sys.exit(main())
