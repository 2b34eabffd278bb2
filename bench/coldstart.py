"""Cold start, side by side in one run: fresh processes vs forks from each zygote tier.

    .venv/bin/python bench/coldstart.py [--samples 20]

Every sample is a scale-from-zero invocation (no instance running), timed from the call to the
answer through the Platform (no HTTP). Cases:
  (a) process   a fresh interpreter imports the handler and runs init (a Lambda cold start)
  (b) base      fork of the base zygote, then every import and init (fork_template = false,
                no preload)
  (c) runtime   runtime zygote warm (preloads imported), template evicted: fork, import, init
  (d) template  template warm, no spare: one fork (--no-prefork-spare)
  (s) spare     template warm with its pre-forked spare: a dispatch (the default)
  (e) scale-out a second instance started while the first is busy (template warm, spare)
Workloads: hello, fraud (scikit-learn), weights (a ~100 MB numpy array loaded at init). Also the
PSS of 1, 2 and 4 concurrent instances of weights. Writes bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results import machine, write_section

from mlambda import bundle
from mlambda.platform import Platform
from mlambda.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EVENTS = {
    "hello": b"{}",
    "fraud": b'{"amount": 4200, "merchant_category": "electronics", "hour": 3}',
    "weights": b"{}",
}
WEIGHTS_APP = """
import os, time
import numpy as np

WEIGHTS = np.load(os.path.join(os.path.dirname(__file__), "weights.npy"))

def handler(event, context):
    time.sleep(event.get("hold", 0))
    return float(WEIGHTS[:1000].sum())
"""


def make_workloads(root: Path) -> dict[str, Path]:
    fraud = ROOT / "examples" / "fraud"
    if not (fraud / "model.joblib").exists():
        subprocess.run([sys.executable, str(fraud / "train.py")], check=True)
    weights = root / "weights"
    weights.mkdir()
    array = np.random.default_rng(0).standard_normal(25 * 1024 * 1024 // 1, dtype=np.float32)
    np.save(weights / "weights.npy", array)  # 100 MiB
    (weights / "app.py").write_text(WEIGHTS_APP)
    (weights / "mlambda.toml").write_text(
        '[function]\nname = "weights"\nhandler = "app:handler"\nmemory_mb = 1024\n'
        'max_instances = 4\npreload = ["numpy"]\n'
    )
    return {"hello": ROOT / "examples" / "hello", "fraud": fraud, "weights": weights}


def base_only(directory: Path, root: Path) -> Path:
    """A copy of the function with no preload and no template: instances fork the base."""
    copy = root / f"{directory.name}-base"
    shutil.copytree(directory, copy, ignore=shutil.ignore_patterns("__pycache__"))
    spec = copy / "mlambda.toml"
    lines = [line for line in spec.read_text().splitlines() if not line.startswith("preload")]
    index = lines.index("[function]") + 1
    lines[index:index] = ["preload = []", "fork_template = false"]
    spec.write_text("\n".join(lines) + "\n")
    return copy


class Bench:
    def __init__(self, backend: str, spare: bool = True, sandbox: str = "auto") -> None:
        self.data = tempfile.TemporaryDirectory()
        settings = Settings.from_env(
            {},
            data_dir=Path(self.data.name),
            backend=backend,
            prefork_spare=spare,
            sandbox=sandbox,
        )
        self.platform = Platform(settings)
        self.spare_pss: list[int] = []

    async def __aenter__(self) -> Bench:
        await self.platform.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.platform.stop()
        self.data.cleanup()

    async def deploy(self, directory: Path, name: str | None = None) -> str:
        record, _ = await self.platform.deploy(bundle.pack(directory), name=name)
        return record.name

    async def call(self, name: str, event: bytes) -> float:
        started = time.perf_counter()
        result = await self.platform.invoke(name, event)
        assert result.error is None, result.error.to_body()
        return (time.perf_counter() - started) * 1000

    async def to_zero(self, name: str, evict_template: bool = False) -> None:
        pool = self.platform.router.pools[name]
        await asyncio.gather(*(instance.stop() for instance in list(pool.instances)))
        while pool.instances:
            await asyncio.sleep(0.001)
        if evict_template:
            await self.platform.backend.release(pool._start_request("bench"))
        elif self.platform.settings.prefork_spare:
            await self.spare_ready(name)

    async def spare_ready(self, name: str) -> None:
        """Wait until the function's spare is forked and has finished preparing: its CPU time
        has stopped growing, as after any idle time a function scales to zero in."""
        for _ in range(2000):
            spares = [p.pid for p in self._shared() if p.kind == "spare" and p.name == name]
            if spares:
                await _settled(spares[0])
                return
            await asyncio.sleep(0.001)

    def _shared(self) -> list:  # type: ignore[type-arg]
        return self.platform.backend.shared_processes()

    async def cold_starts(self, name: str, samples: int, evict: bool = False) -> list[float]:
        event = EVENTS[name.removesuffix("-base")]
        await self.call(name, event)  # warms the zygotes (and the template)
        timings = []
        for _ in range(samples):
            await self.to_zero(name, evict)
            timings.append(await self.call(name, event))
        return timings

    async def scale_out(self, name: str, samples: int) -> list[float]:
        await self.call(name, b"{}")
        timings = []
        for _ in range(samples):
            await self.to_zero(name)
            await self.call(name, b"{}")  # one instance, now idle
            busy = asyncio.ensure_future(self.call(name, b'{"hold": 0.5}'))
            await asyncio.sleep(0.05)
            timings.append(await self.call(name, b"{}"))  # finds it busy: starts a second
            await busy
        return timings

    async def pss_kib(self, name: str, count: int) -> list[int]:
        await self.to_zero(name)
        hold = f'{{"hold": {1.0 + count * 0.2}}}'.encode()
        calls = [asyncio.ensure_future(self.call(name, hold)) for _ in range(count)]
        await asyncio.sleep(0.5 + count * 0.1)
        rows = [
            p
            for p in self.platform.processes()
            if p["kind"] in ("instance", "template", "spare") and p["function"] == name
        ]
        await asyncio.gather(*calls)
        self.spare_pss = [int(str(r["pssKiB"])) for r in rows if r["kind"] == "spare"]
        return [int(str(r["pssKiB"])) for r in rows]  # template, spare and each instance


def _stats(timings: list[float]) -> tuple[float, float]:
    p95 = statistics.quantiles(timings, n=20)[18] if len(timings) >= 20 else max(timings)
    return statistics.median(timings), p95


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    samples = parser.parse_args().samples
    rows, pss_rows, spare_pss = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        workloads = make_workloads(Path(scratch))
        for name, directory in workloads.items():
            async with Bench("process") as bench:
                await bench.deploy(directory)
                cases = {"(a) process": await bench.cold_starts(name, samples)}
            async with Bench("zygote", spare=False) as bench:
                await bench.deploy(directory)
                base = await bench.deploy(base_only(directory, Path(scratch)), f"{name}-base")
                cases["(b) base zygote"] = await bench.cold_starts(base, samples)
                cases["(c) runtime zygote"] = await bench.cold_starts(name, samples, evict=True)
                cases["(d) template"] = await bench.cold_starts(name, samples)
            async with Bench("zygote") as bench:
                await bench.deploy(directory)
                cases["(s) template + spare"] = await bench.cold_starts(name, samples)
                if name == "weights":
                    cases["(e) scale-out"] = await bench.scale_out(name, samples)
                    for count in (1, 2, 4):
                        pss_rows.append((count, await bench.pss_kib(name, count)))
                        spare_pss.extend(bench.spare_pss)
            baseline = statistics.median(cases["(a) process"])
            for case, timings in cases.items():
                p50, p95 = _stats(timings)
                rows.append(
                    f"| {name} | {case} | {len(timings)} | {p50:.1f} | {p95:.1f} | "
                    f"{baseline / p50:.1f}x |"
                )
                print(rows[-1], flush=True)
    _write(rows, pss_rows, spare_pss, samples)


def _write(
    rows: list[str], pss_rows: list[tuple[int, list[int]]], spare_pss: list[int], samples: int
) -> None:
    pss_lines = []
    totals = {count: sum(values) for count, values in pss_rows}
    for count in totals:
        total = totals[count]
        # What one more instance costs: the growth of the whole family's PSS per instance.
        extra = (total - totals[1]) / (count - 1) if count > 1 else None
        each = f"{extra / 1024:.1f}" if extra is not None else "-"
        ratio = f"{extra / totals[1]:.0%}" if extra is not None else "-"
        pss_lines.append(f"| {count} | {total / 1024:.1f} | {each} | {ratio} |")
    spare_text = f"{statistics.median(spare_pss) / 1024:.1f} MiB" if spare_pss else "n/a"
    text = f"""## Cold start: scale from zero, by how the instance starts

Command: `make bench` (`.venv/bin/python bench/coldstart.py --samples {samples}`), one run, all
cases. Machine: {machine()}.

Each sample invokes a function with no instance running (except (e)) and times call to answer
through the Platform (the HTTP gateway excluded). `hello` is the smallest handler; `fraud` imports
scikit-learn and loads a 100-tree random forest at init; `weights` loads a 100 MiB numpy array.
(a) a fresh interpreter per instance (`--backend process`, what a Lambda container does);
(b) a fork of the base zygote that then imports and inits everything; (c) a fork of the runtime
zygote (preloads imported) that imports the handler and inits, template evicted; (d) one fork
of the warm template, no spare; (s) the default: the template's pre-forked spare takes the call
(a dispatch) and the template forks the next spare in the background; (e) a second instance
started while the first is busy. For `fraud`, about 12 ms of every case is the model's own
`predict_proba` (a warm call takes that long), and its first call in a new process pays a few
more ms of scikit-learn's first-use work. `hello` has no `preload`, so its (c) rebuilds the
template from the base zygote and then forks it: two forks where (b) has one.

| function | case | samples | p50 ms | p95 ms | speed-up vs (a), p50 |
|---|---|---|---|---|---|
{chr(10).join(rows)}

## Memory: PSS of concurrent instances of `weights` (template-forked)

PSS counts a page shared by N processes as 1/N in each, so the PSS of the template plus its
instances is the memory they really use together. The 100 MiB array lives in the template and
is shared copy-on-write by every instance. "Each extra instance" is how much that total grows
per instance beyond the first; the ratio compares it with the total for one instance.

| instances | PSS of template, spare and instances, MiB | each extra instance, MiB | extra / first |
|---|---|---|---|
{chr(10).join(pss_lines)}

The pre-forked spare's own PSS while it waits: {spare_text}. That is its share of the pages it
shares with the template and the instances, not memory of its own: the total above grows by
only a few MiB per process.
"""
    write_section("coldstart", text)


async def _settled(pid: int, quiet_polls: int = 3, every_s: float = 0.01) -> None:
    """Return once ``pid`` used no CPU over ``quiet_polls`` polls (or it is gone)."""
    last, quiet = -1, 0
    for _ in range(1000):
        try:  # nanoseconds on the CPU, all its threads (the kernel's scheduler statistics)
            used = sum(
                int(Path(task, "schedstat").read_text().split()[0])
                for task in Path(f"/proc/{pid}/task").iterdir()
            )
        except OSError:
            return
        quiet = quiet + 1 if used == last else 0
        if quiet >= quiet_polls:
            return
        last = used
        await asyncio.sleep(every_s)


if __name__ == "__main__":
    asyncio.run(main())
