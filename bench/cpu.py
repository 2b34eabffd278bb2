"""`cpu = "proportional"`: a CPU-bound handler's duration as memory_mb grows, each size with
the CPU share Lambda would give it (one core at 1,769 MB), side by side with no quota.

    .venv/bin/python bench/cpu.py [--calls 5]

The handler runs the same fixed work (a pure-Python loop) each call; the median duration of
`--calls` warm calls per memory size is reported. Writes the "cpu" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from results import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import write_function  # noqa: E402
from tests.system.conftest import Server  # noqa: E402

MEMORY = (256, 512, 1024, 1769, 3538)
WORK = """
import time

def handler(event, context):
    started = time.perf_counter()
    total = 0
    for n in range(event["n"]):
        total += n * n % 7
    return {"ms": (time.perf_counter() - started) * 1000}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--n", type=int, default=2_000_000)
    args = parser.parse_args()
    payload = json.dumps({"n": args.n}).encode()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = Server(root / "data").start()
        try:
            settings = [(f"p{mb}", mb, "proportional") for mb in MEMORY] + [("free", 512, None)]
            for name, mb, cpu in settings:
                config = {"memory_mb": mb, "timeout_s": 120}
                if cpu:
                    config["cpu"] = cpu
                server.deploy(write_function(root, name, WORK, **config))
                server.client.invoke(name, payload)  # warm
                took = [json.loads(server.client.invoke(name, payload))["ms"]
                        for _ in range(args.calls)]  # fmt: skip
                results.append((mb, cpu, statistics.median(took)))
                print(mb, cpu, f"{results[-1][2]:.0f} ms", flush=True)
        finally:
            server.stop()
    free = results[-1][2]
    lines = [
        '## CPU in proportion to memory (`cpu = "proportional"`)',
        "",
        f"{machine()}. `make bench-cpu`: a pure-Python loop of {args.n:,} steps, the median of",
        f"{args.calls} warm calls per setting. Proportional: min(memory_mb / 1769, 6, the",
        "machine's cores) cores of CFS quota; no quota: the function's `cpu` unset.",
        "",
        "| memory_mb | cpu | cores | median duration (ms) | vs no quota |",
        "|---|---|---|---|---|",
    ]
    for mb, cpu, ms in results:
        cores = f"{min(mb / 1769, 6, os.cpu_count() or 1):.2f}" if cpu else "all"
        lines.append(f"| {mb} | {cpu or 'unset'} | {cores} | {ms:,.0f} | {ms / free:.2f}x |")
    write_section("cpu", "\n".join(lines))


if __name__ == "__main__":
    main()
