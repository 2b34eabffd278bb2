"""Cold start of a provided runtime (the bundle's bootstrap) beside the same handler as a Python
function, side by side in one run.

    .venv/bin/python bench/provided.py [--samples 20]

The handler is `hello`'s. Cases, each on both backends (`process`: a fresh interpreter per
instance; `zygote`: the default, forked from the function's template with a pre-forked spare):
  python        runtime unset: the worker imports the handler and calls it
  awslambdaric  runtime = "provided.al2023", bootstrap = `exec python -m awslambdaric app.handler`
                (what a Lambda container image built on Lambda's Python base runs)
  urllib        runtime = "provided.al2023", bootstrap = a 20-line Python loop over urllib: what
                the interpreter's start costs without the Runtime Interface Client's imports
Cold: scale from zero, call to answer through the Platform (no HTTP gateway); warm: the median
of calls to the running instance. Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

from coldstart import Bench, _stats
from results import machine, write_section

# The platform's interpreter, where the sandbox shows it (no "..": the view binds real paths).
PYTHON = os.path.abspath(sys.executable)
HANDLER = "def handler(event, context):\n    return {'hello': event.get('name', 'world')}\n"
URLLIB_BOOTSTRAP = f"""#!{PYTHON}
import os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as event:
        request_id = event.headers["Lambda-Runtime-Aws-Request-Id"]
        event.read()
    answer = urllib.request.Request(api + request_id + "/response", data=b'{{"hello": "world"}}')
    urllib.request.urlopen(answer).read()
"""
BOOTSTRAPS = {
    "awslambdaric": f'#!/bin/sh\nexec {PYTHON} -m awslambdaric "$_HANDLER"\n',
    "urllib": URLLIB_BOOTSTRAP,
}


def make_functions(root: Path) -> dict[str, Path]:
    functions = {}
    for name in ("python", *BOOTSTRAPS):
        directory = root / name
        directory.mkdir()
        (directory / "app.py").write_text(HANDLER)
        spec = f'[function]\nname = "{name}"\n'
        if name == "python":
            spec += 'handler = "app:handler"\n'
        else:
            spec += 'runtime = "provided.al2023"\nhandler = "app.handler"\n'
            (directory / "bootstrap").write_text(BOOTSTRAPS[name])
            (directory / "bootstrap").chmod(0o755)
        (directory / "mlambda.toml").write_text(spec)
        functions[name] = directory
    return functions


async def cold(bench: Bench, name: str, samples: int) -> list[float]:
    await bench.call(name, b"{}")  # builds the template
    timings = []
    for _ in range(samples):
        await bench.to_zero(name)
        timings.append(await bench.call(name, b"{}"))
    return timings


async def warm(bench: Bench, name: str, samples: int) -> list[float]:
    await bench.call(name, b"{}")
    return [await bench.call(name, b"{}") for _ in range(samples)]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    samples = parser.parse_args().samples
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        functions = make_functions(Path(scratch))
        for backend in ("process", "zygote"):
            async with Bench(backend) as bench:
                for directory in functions.values():
                    await bench.deploy(directory)
                baseline = 0.0
                for name in functions:
                    p50, p95 = _stats(await cold(bench, name, samples))
                    warm_p50 = statistics.median(await warm(bench, name, samples))
                    baseline = baseline or p50
                    rows.append(
                        f"| {backend} | {name} | {samples} | {p50:.1f} | {p95:.1f} | "
                        f"{p50 / baseline:.1f}x | {warm_p50:.2f} |"
                    )
                    print(rows[-1], flush=True)
    _write(rows, samples)


def _write(rows: list[str], samples: int) -> None:
    text = f"""## Cold start of a provided runtime (`runtime = "provided"`) beside a Python function

Command: `.venv/bin/python bench/provided.py --samples {samples}`, one run, all cases. Machine:
{machine()}.

The same `hello` handler three ways: `python` (the worker imports and calls it); `awslambdaric`
(a provided runtime whose bootstrap execs `python -m awslambdaric app.handler`, as Lambda's
container images do); `urllib` (a provided runtime whose bootstrap is a 10-line Python loop over
the Runtime API). On `process` every instance is a fresh interpreter; on `zygote` (the default)
every instance is forked from the function's template and the pre-forked spare takes the call:
a provided runtime's template holds its sandbox and environment, and each instance then starts
the bootstrap, which pays for a new interpreter, its imports and its first /next. Cold: a call
with no instance running, call to answer through the Platform (no HTTP gateway). Warm: median of
{samples} calls to the running instance (a provided runtime's call crosses the instance's
loopback HTTP twice).

| backend | function | samples | cold p50 ms | cold p95 ms | cold p50 vs python | warm p50 ms |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}
"""
    write_section("provided", text)


if __name__ == "__main__":
    asyncio.run(main())
