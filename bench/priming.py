"""Priming, side by side: scale from zero with the template primed, unprimed, and fresh.

    .venv/bin/python bench/priming.py [--samples 20]

A model function (a scikit-learn RandomForest of 200 trees) is called from zero instances:
  primed     the default: its template called the model once on a sample before forking
  unprimed   ``prime = false``: the first call in each instance does scikit-learn's first use
  process    a fresh interpreter per instance (``--backend process``): nothing to inherit
and compared with its warm call W. ``hello`` from zero shows what a template start costs with
no work of its own. Timed through the Platform (no HTTP); writes the "priming" section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from coldstart import ROOT, Bench, _stats
from results import machine, write_section

FEATURES = 8
TREES = 200


def make_forest(root: Path, name: str, prime: bool) -> Path:
    import skops.io
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, FEATURES))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    directory = root / name
    directory.mkdir()
    forest = RandomForestClassifier(n_estimators=TREES, random_state=0).fit(x, y)
    skops.io.dump(forest, directory / "forest.skops")
    (directory / "mlambda.toml").write_text(
        f'[function]\nname = "{name}"\nmodel = "forest.skops"\n'
        f"prime = {'true' if prime else 'false'}\n"
    )
    return directory


EVENT = json.dumps({"inputs": [[0.5] * FEATURES]}).encode()


async def from_zero(bench: Bench, name: str, event: bytes, samples: int) -> list[float]:
    await bench.call(name, event)  # builds the zygotes and the template
    timings = []
    for _ in range(samples):
        await bench.to_zero(name)
        timings.append(await bench.call(name, event))
    return timings


async def warm(bench: Bench, name: str, samples: int) -> list[float]:
    await bench.call(name, EVENT)
    return [await bench.call(name, EVENT) for _ in range(samples)]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    samples = parser.parse_args().samples
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        primed = make_forest(Path(scratch), "forest", prime=True)
        unprimed = make_forest(Path(scratch), "forest_unprimed", prime=False)
        cases: dict[str, list[float]] = {}
        async with Bench("zygote") as bench:
            await bench.deploy(primed)
            await bench.deploy(unprimed)
            cases["forest warm call (W)"] = await warm(bench, "forest", samples)
            cases["forest primed, from zero"] = await from_zero(bench, "forest", EVENT, samples)
            cases["forest prime = false, from zero"] = await from_zero(
                bench, "forest_unprimed", EVENT, samples
            )
            await bench.deploy(ROOT / "examples" / "hello")
            cases["hello from zero"] = await from_zero(bench, "hello", b"{}", samples)
        async with Bench("process") as bench:
            await bench.deploy(primed)
            cases["forest fresh process, from zero"] = await from_zero(
                bench, "forest", EVENT, samples
            )
    rows = []
    for case, timings in cases.items():
        p50, p95 = _stats(timings)
        rows.append(f"| {case} | {len(timings)} | {p50:.2f} | {p95:.2f} |")
        print(rows[-1], flush=True)
    _write(rows, _goals(cases), samples, time.perf_counter() - started)


def _goals(cases: dict[str, list[float]]) -> list[str]:
    p50 = {case: statistics.median(timings) for case, timings in cases.items()}
    w = p50["forest warm call (W)"]
    primed = p50["forest primed, from zero"]
    speedup = p50["forest fresh process, from zero"] / primed
    hello = p50["hello from zero"]
    goals = [
        (f"forest primed from zero <= W + 2 ms ({w + 2:.2f} ms)", f"{primed:.2f} ms",
         primed <= w + 2),
        ("forest primed from zero >= 100x faster than a fresh process", f"{speedup:.0f}x",
         speedup >= 100),
        ("hello from zero <= 2 ms p50", f"{hello:.2f} ms", hello <= 2),
    ]  # fmt: skip
    return [f"| {goal} | {measured} | {'yes' if met else 'no'} |" for goal, measured, met in goals]


def _write(rows: list[str], goals: list[str], samples: int, seconds: float) -> None:
    text = f"""## Priming: a template's warm-up, inherited by every instance it forks

Command: `.venv/bin/python bench/priming.py --samples {samples}` ({seconds:.0f} s). Machine:
{machine()}.

`forest` is a model function: a scikit-learn RandomForest of {TREES} trees over {FEATURES}
features, one row per call. Its template calls the model once on zeros shaped by its input
signature before forking (priming, the default); `prime = false` turns that off, so each
instance's first call does scikit-learn's first-use work; a fresh process (`--backend process`)
loads the model and does that work on every cold start. W is a call to a warm instance. Each
"from zero" sample stops every instance first, then times call to answer through the Platform
(no HTTP); the template's pre-forked spare takes the call (the default).

| case | samples | p50 ms | p95 ms |
|---|---|---|---|
{chr(10).join(rows)}

| goal | measured (p50) | met |
|---|---|---|
{chr(10).join(goals)}
"""
    write_section("priming", text)


if __name__ == "__main__":
    asyncio.run(main())
