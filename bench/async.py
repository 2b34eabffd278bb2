"""Asynchronous invocation, side by side with sync invoke in one run.

    .venv/bin/python bench/async.py [--duration 10]

`mlambda serve` (zygote backend) with a no-op function of 2 instances, on each queue backend
(SQLite; Redis and NATS servers of the run's own):
- accept rate: wrk at concurrency 32 on `?mode=async` against the same on the sync invoke, in
  alternating rounds (the queue drains between rounds); goal: accepting >= 1x sync requests/s;
- drain throughput: the backlog an accept round leaves, timed until the queue is empty with
  nothing else running, against sync throughput at the same instance count; goal >= 80%;
- 202 -> handler start: one event at a time on a free, warm instance; goal p50 <= 5 ms;
- idle cost: serve's CPU time over 10 s with an empty queue (no polling loop).
Writes the "async" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from models import wrk
from results import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import write_function  # noqa: E402
from tests.system.brokers import BROKERS  # noqa: E402
from tests.system.conftest import Server  # noqa: E402

NOOP = """
import time

def handler(event, context):
    return {"started": time.time()}
"""
ROUNDS = 3
INSTANCES = 2


def depth(server: Server) -> int:
    text = server.http("GET", "/metrics").text
    found = re.search(r'^mlambda_async_queue_depth\{function="noop"\} ([\d.e+]+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


def drain(server: Server, timeout: float = 600) -> tuple[int, float]:
    """(events left when called, seconds until none is)."""
    left, started = depth(server), time.perf_counter()
    deadline = time.monotonic() + timeout
    # Each look at the depth costs the platform a query: every 0.1 s is accurate to ~1%.
    while depth(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    if depth(server):
        raise RuntimeError("the queue did not drain")
    return left, time.perf_counter() - started


def rounds(server: Server, duration: int) -> tuple[float, float, float, float]:
    """Sync invoke and async accept taking turns; after each accept round, the backlog it left
    drains with nothing else running: that is the drain throughput."""
    url = f"{server.url}/v1/functions/noop/invoke"
    sync, accepted, drained, errors = [], [], [], 0.0
    for _ in range(ROUNDS):
        run = wrk(url, b"{}", server.key, 32, duration)
        sync.append(run["rps"])
        errors += run["errors"]
        run = wrk(url + "?mode=async", b"{}", server.key, 32, duration)
        accepted.append(run["rps"])
        errors += run["errors"]
        left, seconds = drain(server)
        drained.append(left / seconds)
    return statistics.median(sync), statistics.median(accepted), statistics.median(drained), errors


def start_latency(server: Server, samples: int = 200) -> float:
    delays = []
    for _ in range(samples):
        response = server.http("POST", "/v1/functions/noop/invoke?mode=async", json={})
        invocation = response.json()["invocation_id"]
        while True:
            record = server.http("GET", f"/v1/invocations/{invocation}").json()
            if record["state"] == "succeeded":
                break
            time.sleep(0.002)
        delays.append((record["result"]["started"] - record["enqueuedAt"]) * 1000)
        time.sleep(0.02)
    return statistics.median(delays)


def idle_cpu_ms(server: Server, seconds: float = 10) -> float:
    import os

    assert server.process is not None
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    before = cpu()
    time.sleep(seconds)
    return (cpu() - before) * 1000


@dataclasses.dataclass
class Figures:
    backend: str
    sync: float
    accepted: float
    drain: float
    errors: float
    latency: float
    idle: float


def measure(backend: str, root: Path, duration: int) -> Figures:
    """One platform on ``backend``'s queue: every figure, sync and async side by side."""
    broker = BROKERS[backend](root / backend) if backend in BROKERS else None
    if broker is not None:
        broker.fsync = "everysec"  # as durable as the SQLite queue's WAL (see the text)
        broker.start()
    queue = ("--queue-url", broker.url) if broker is not None else ()
    server = Server(root / f"data-{backend}", "--backend", "zygote", *queue).start()
    try:
        server.deploy(write_function(root, "noop", NOOP, max_instances=INSTANCES))
        server.http("POST", "/v1/functions/noop/invoke", json={})  # warm
        sync, accepted, drain_rate, errors = rounds(server, duration)
        print(
            f"{backend}: sync {sync:.0f}/s, accept {accepted:.0f}/s, drain {drain_rate:.0f}/s, "
            f"non-2xx {errors:.0f}",
            flush=True,
        )
        latency = start_latency(server)
        idle = idle_cpu_ms(server)
        print(f"{backend}: 202 -> start p50 {latency:.2f} ms, idle CPU {idle:.0f} ms", flush=True)
    finally:
        server.stop()
        if broker is not None:
            broker.stop()
    return Figures(backend, sync, accepted, drain_rate, errors, latency, idle)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--backends", default="sqlite,redis,nats")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        figures = [measure(b, Path(scratch), args.duration) for b in args.backends.split(",")]
    _write(figures, args)


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _goals(f: Figures) -> list[tuple[str, str, str, bool]]:
    return [
        (
            "accept rate vs sync invoke, c=32",
            ">= 1x",
            f"{f.accepted / f.sync:.2f}x ({f.accepted:.0f} vs {f.sync:.0f} requests/s)",
            f.accepted >= f.sync,
        ),
        (
            "drain throughput vs sync, same instances",
            ">= 80%",
            f"{f.drain / f.sync:.0%} ({f.drain:.0f} vs {f.sync:.0f}/s)",
            f.drain >= 0.8 * f.sync,
        ),
        (
            "202 -> handler start, free warm instance, p50",
            "<= 5 ms",
            f"{f.latency:.2f} ms",
            f.latency <= 5,
        ),
        ("idle cost, empty queue, 10 s", "no polling", f"{f.idle:.0f} ms of CPU", f.idle <= 100),
    ]


def _write(figures: list[Figures], args: argparse.Namespace) -> None:
    errors = sum(f.errors for f in figures)
    text = f"""
## Asynchronous invocation (`make bench-async`)

{machine()}. `mlambda serve`, zygote backend; a no-op handler with {INSTANCES} instances; wrk at
concurrency 32, {ROUNDS} rounds of {args.duration} s each way, sync and async taking turns (the
queue drains between rounds), on each queue backend in turn: the embedded SQLite queue (WAL,
committed before each 202), Redis Streams (a redis-server of the run's own, append-only file with
`appendfsync everysec`) and NATS JetStream (a nats-server of its own, file storage).
Non-2xx responses in all rounds: {errors:.0f}. While an accept round runs, the dispatcher runs the
accepted events too, on the same 2 cores: the accept rate is measured with the queue draining
beside it, as in use. The drain rate is the backlog an accept round left, run with nothing else.

{{table}}
"""
    lines = ["| goal | target | " + " | ".join(f.backend for f in figures) + " |"]
    lines.append("|---|---|" + "---|" * len(figures))
    for i, (goal, target, _, _) in enumerate(_goals(figures[0])):
        cells = [f"{_goals(f)[i][2]}, {_met(_goals(f)[i][3])}" for f in figures]
        lines.append(f"| {goal} | {target} | " + " | ".join(cells) + " |")
    write_section("async", text.replace("{table}", "\n".join(lines)))


if __name__ == "__main__":
    main()
