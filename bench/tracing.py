"""Tracing's cost on a warm invoke: the same function on two platforms, one with tracing off
(the default) and one exporting every span over OTLP/HTTP to a receiver on this machine, called
in turns in one run.

    .venv/bin/python bench/tracing.py [--calls 3000]

Sequential calls from one keep-alive client, in rounds that alternate between the two
platforms (so drift of the machine hits both). Goal: tracing on adds at most 15% to a warm
call's median latency; off, nothing of OpenTelemetry is loaded. Writes the "tracing" section
of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
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
from tests.system.otlp import Collector  # noqa: E402

ROUNDS = 10
HANDLER = "def handler(event, context):\n    return {'ok': True}\n"


def timed_calls(server: Server, calls: int) -> list[float]:
    url = f"{server.url}/v1/functions/echo/invoke"
    headers = {"Authorization": f"Bearer {server.key}"}
    took = []
    with httpx.Client(headers=headers, timeout=30) as client:
        for _ in range(calls):
            started = time.perf_counter()
            client.post(url, content=b"{}").raise_for_status()
            took.append((time.perf_counter() - started) * 1e6)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    collector = Collector()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        off = Server(root / "off").start()
        on = Server(root / "on", env=collector.env()).start()
        try:
            for server in (off, on):
                server.deploy(write_function(root / server.data_dir.name, "echo", HANDLER))
                timed_calls(server, 200)  # warm: instance started, connections made
            took: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(ROUNDS):
                for name, server in (("off", off), ("on", on)):
                    took[name] += timed_calls(server, args.calls // ROUNDS)
            time.sleep(1)  # the last batch of spans reaches the receiver
        finally:
            off.stop()
            on.stop()
            collector.close()
    spans = len(collector.spans)
    median = {name: statistics.median(values) for name, values in took.items()}
    mean = {name: statistics.fmean(values) for name, values in took.items()}
    ratio = median["on"] / median["off"]
    print(f"off {median['off']:.0f} us, on {median['on']:.0f} us, {ratio:.2f}x, {spans} spans")
    lines = [
        "## Tracing: a warm invoke with tracing off and on",
        "",
        f"{machine()}. `make bench-tracing`: a function returning a constant on two platforms,",
        "one with tracing off (the default), one exporting every span over OTLP/HTTP to a",
        f"receiver on this machine; {args.calls:,} sequential calls each from one keep-alive",
        f"client, in {ROUNDS} alternating rounds. The receiver got {spans:,} spans",
        f"({spans / max(1, args.calls):.1f} a call: request, auth, invoke, handler).",
        "",
        "| tracing | median latency (µs) | mean (µs) |",
        "|---|---|---|",
        f"| off | {median['off']:.0f} | {mean['off']:.0f} |",
        f"| on (OTLP) | {median['on']:.0f} | {mean['on']:.0f} |",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        f"| on adds <= 15% to the median | {ratio - 1:+.0%} | "
        f"{'met' if ratio <= 1.15 else 'not met'} |",
    ]
    write_section("tracing", "\n".join(lines))


if __name__ == "__main__":
    main()
