"""Cold start, side by side in one run: a fresh process per instance vs forks from zygotes.

    .venv/bin/python bench/coldstart.py [--samples 20]

For each workload, every sample is a scale-from-zero invocation (no instance running) measured
from the call to the answer, through the Platform (no HTTP):
  process   a fresh interpreter imports the handler and runs its init (what a Lambda container
            does on a cold start)
  runtime   zygote backend, runtime zygote warm (numpy/sklearn imported), template evicted:
            fork, import the handler, run init
  template  zygote backend, template warm: one fork
Writes bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform as host
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlambda import bundle
from mlambda.platform import Platform
from mlambda.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {"hello": ROOT / "examples" / "hello", "fraud": ROOT / "examples" / "fraud"}
FRAUD_EVENT = b'{"amount": 4200, "merchant_category": "electronics", "hour": 3}'


async def _scale_to_zero(platform: Platform, name: str, evict_template: bool) -> None:
    pool = platform.router.pools[name]
    await asyncio.gather(*(instance.stop() for instance in list(pool.instances)))
    while pool.instances:
        await asyncio.sleep(0.001)
    if evict_template:
        await platform.backend.release(pool._start_request("bench"))


async def measure(backend: str, name: str, samples: int, evict_template: bool) -> list[float]:
    with tempfile.TemporaryDirectory() as data:
        platform = Platform(Settings.from_env({}, data_dir=Path(data), backend=backend))
        await platform.start()
        try:
            await platform.deploy(bundle.pack(WORKLOADS[name]))
            event = FRAUD_EVENT if name == "fraud" else b"{}"
            await platform.invoke(name, event)  # warms the zygotes (and the template)
            timings = []
            for _ in range(samples):
                await _scale_to_zero(platform, name, evict_template)
                started = time.perf_counter()
                result = await platform.invoke(name, event)
                timings.append((time.perf_counter() - started) * 1000)
                assert result.error is None and result.init_ms is not None, result
            return timings
        finally:
            await platform.stop()


def _row(name: str, case: str, timings: list[float], baseline: float) -> str:
    p50 = statistics.median(timings)
    p95 = statistics.quantiles(timings, n=20)[18] if len(timings) >= 20 else max(timings)
    return f"| {name} | {case} | {len(timings)} | {p50:.1f} | {p95:.1f} | {baseline / p50:.1f}x |"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    if not (WORKLOADS["fraud"] / "model.joblib").exists():
        subprocess.run([sys.executable, str(WORKLOADS["fraud"] / "train.py")], check=True)
    rows = []
    for name in WORKLOADS:
        process = await measure("process", name, args.samples, evict_template=False)
        runtime = await measure("zygote", name, args.samples, evict_template=True)
        template = await measure("zygote", name, args.samples, evict_template=False)
        baseline = statistics.median(process)
        rows += [
            _row(name, "process (fresh interpreter)", process, baseline),
            _row(name, "runtime zygote warm, template evicted", runtime, baseline),
            _row(name, "template warm (one fork)", template, baseline),
        ]
        print("\n".join(rows[-3:]), flush=True)
    _write(rows, args.samples)


def _write(rows: list[str], samples: int) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        host.processor(),
    )
    text = f"""# Benchmarks

## Cold start: scale from zero, by backend

Command: `.venv/bin/python bench/coldstart.py --samples {samples}` (one run, all cases).
Machine: {cpu}, 2 cores, Python {host.python_version()}, {time.strftime("%Y-%m-%d")}.

Each sample invokes a function with no instance running and measures call to answer through
the Platform (gateway excluded). `hello` is the smallest handler; `fraud` imports scikit-learn
and loads a 100-tree random forest at init (`preload = ["numpy", "sklearn"]`).

| function | how the instance starts | samples | p50 ms | p95 ms | speed-up vs process (p50) |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Not yet measured here (the rest of the zygote issue): scale-out while busy, the 100 MB weight
file, PSS per instance, and the pre-forked spare.
"""
    (ROOT / "bench" / "RESULTS.md").write_text(text)


if __name__ == "__main__":
    asyncio.run(main())
