"""The memory part of bench/models.py: PSS of 1 vs 4 warm instances of the same model.

Each family is measured on a Platform of its own (zygote backend, pre-forked spare on, no HTTP),
so that no other function's processes share its pages: a function with min_instances =
max_instances = N (N = 1, then 4) is deployed, its N instances come up, a short load runs on
them, and the PSS of its template, spare and instances is read from ``Platform.processes()``
(the rows of `mlambda ps` and ``Client.processes()``).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from coldstart import Bench

COUNTS = (1, 4)
GOAL = 1.3  # PSS of 4 warm instances <= GOAL x one instance
KINDS = ("template", "spare", "instance")
MIB = 1024.0


def function_dir(root: Path, name: str, model: Path, settings: str) -> Path:
    """A function directory with a copy of ``model``; ``settings``: more [function] lines."""
    directory = root / name
    directory.mkdir(parents=True)
    target = directory / model.name
    if model.is_dir():
        shutil.copytree(model, target)
    else:
        shutil.copy(model, target)
    (directory / "mlambda.toml").write_text(
        f'[function]\nname = "{name}"\nmodel = "{model.name}"\n{settings}'
    )
    return directory


async def family(directory: Path, payload: bytes, count: int, rounds: int) -> list[dict]:
    """The rows of the function's template, spare and instances after ``rounds`` waves of
    ``2 x count`` concurrent calls on its ``count`` warm instances."""
    async with Bench("zygote") as bench:
        name = await bench.deploy(directory)
        deadline = time.monotonic() + 120
        while True:
            counts = bench.platform.instances(name)
            if counts["idle"] + counts["busy"] >= count:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: {count} instances did not come up: {counts}")
            await asyncio.sleep(0.05)
        for _ in range(rounds):
            await asyncio.gather(*(bench.call(name, payload) for _ in range(2 * count)))
        await bench.spare_ready(name)
        await asyncio.sleep(0.2)  # let the instances settle (freed buffers returned)
        return [
            dict(r)
            for r in bench.platform.processes()
            if r["function"] == name and r["kind"] in KINDS
        ]


async def memory(
    root: Path, workloads: list[tuple[str, Path, bytes]], rounds: int
) -> tuple[list[str], list[str]]:
    """Table rows and goal lines, for each (label, model, payload)."""
    rows, goals = [], []
    for label, model, payload in workloads:
        totals = {}
        for count in COUNTS:
            name = f"{label.replace('-', '_')}_x{count}"
            settings = f"min_instances = {count}\nmax_instances = {count}\nmemory_mb = 1024\n"
            directory = function_dir(root, name, model, settings)
            found = await family(directory, payload, count, rounds)
            totals[count] = sum(int(r["pssKiB"]) for r in found) / MIB
            rows.append(_row(label, count, found, totals[count]))
            print(rows[-1], flush=True)
        ratio = totals[COUNTS[-1]] / totals[COUNTS[0]]
        goals.append(
            f"- `{label}`: {totals[COUNTS[-1]]:.0f} MiB for {COUNTS[-1]} instances vs "
            f"{totals[COUNTS[0]]:.0f} MiB for one: {ratio:.2f}x, "
            f"{'met' if ratio <= GOAL else 'not met'} (goal: at most {GOAL}x)."
        )
        print(goals[-1], flush=True)
    return rows, goals


def _row(label: str, count: int, found: list[dict], total: float) -> str:
    def pss(kind: str) -> list[float]:
        return [int(r["pssKiB"]) / MIB for r in found if r["kind"] == kind]

    def listed(values: list[float]) -> str:
        return " / ".join(f"{v:.0f}" for v in values) or "-"

    instances = [r for r in found if r["kind"] == "instance"]
    threads = " / ".join(str(r.get("threads", "?")) for r in instances) or "-"
    rss = max((int(r["rssKiB"]) / MIB for r in instances), default=0.0)
    return (
        f"| {label} | {len(instances)} | {threads} | {listed(pss('template'))} | "
        f"{listed(pss('spare'))} | {listed(pss('instance'))} | {total:.0f} | {rss:.0f} |"
    )


def section(rows: list[str], goals: list[str], rounds: int) -> str:
    newline = "\n"
    return f"""### Memory: instances share the model

Goal: PSS of {COUNTS[-1]} warm instances of the same model at most {GOAL}x that of one instance.
Each model is deployed twice, as a function with `min_instances = max_instances = 1` and as one
with `min_instances = max_instances = {COUNTS[-1]}`, each on a Platform of its own (zygote backend,
pre-forked spare on, no HTTP), so that no other function's processes share its pages. Once its
instances are up, {rounds} waves of 2 x N concurrent calls run on them (batching off); then the
rows of `mlambda ps` (`Client.processes()`) for the function are read. "Total PSS" is the sum over
those rows: the function's template (which holds the model), its pre-forked spare (waiting, its
pools already sized and its session built) and its instances. The runtime zygote (the framework
imported, shared by every function of that runtime) is not counted. PSS divides a shared page
among the processes sharing it, so the total is what the function costs; an instance's RSS is
what one unshared copy would take. Memory in MiB. Threads: each instance's native pool threads
(a lone instance gets every core, each further one cores // live instances).

`onnx-mlp` (the batching section's MLP): the template reads the model's initializers once, and
every ONNX Runtime session built after the fork (the session's thread pools must not be forked)
uses those arrays in place, with pre-packing off, so the instances share the weights
copy-on-write. `minilm`: the PyTorch weights are loaded once in the template and shared
copy-on-write.

| model | instances | threads | template PSS | spare PSS | instance PSS | total PSS | instance RSS |
|---|---|---|---|---|---|---|---|
{newline.join(rows)}

{newline.join(goals)}
"""
