"""What the sandbox costs a cold start, side by side in one run: sandbox on vs off.

    .venv/bin/python bench/sandbox.py [--samples 30] [--rounds 3]

Scale from zero of `hello` and `fraud` through the Platform (no HTTP), with the zygote backend:
(s) the default, the template's pre-forked spare takes the call; (d) no spare, one fork of the
template per start (the instance isolates its /tmp on the request's path); (a) a fresh process
(`--backend process`: the whole sandbox is built per instance). Rounds alternate on and off so a
drifting machine hits both alike. Goal (docs/security.md): the sandbox costs scale-from-zero
(s) no more than 1 ms at p50. Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from coldstart import Bench, make_workloads
from results import machine, write_section

CASES = {
    "(s) spare": ("zygote", True),
    "(d) one fork": ("zygote", False),
    "(a) process": ("process", True),
}


async def measure(directory: Path, name: str, case: str, sandbox: str, samples: int) -> list[float]:
    backend, spare = CASES[case]
    async with Bench(backend, spare=spare, sandbox=sandbox) as bench:
        await bench.deploy(directory)
        return await bench.cold_starts(name, samples)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows, verdicts = [], []
    with tempfile.TemporaryDirectory() as scratch:
        workloads = make_workloads(Path(scratch))
        for name in ("hello", "fraud"):
            for case in CASES:
                samples = args.samples if case != "(a) process" else max(5, args.samples // 3)
                timings: dict[str, list[float]] = {"off": [], "auto": []}
                for _ in range(args.rounds):
                    for mode in ("off", "auto"):
                        timings[mode] += await measure(workloads[name], name, case, mode, samples)
                off, on = (statistics.median(timings[m]) for m in ("off", "auto"))
                rows.append(
                    f"| {name} | {case} | {len(timings['off'])} | {off:.2f} | {on:.2f} | "
                    f"{on - off:+.2f} | {on / off:.2f} |"
                )
                print(rows[-1], flush=True)
                if case == "(s) spare":
                    met = "met" if on - off <= 1.0 else "**not met**"
                    cost = f"{on - off:+.2f} ms"
                    verdicts.append(
                        f"| {name}: sandbox cost at p50, (s) | <= 1 ms | {cost} | {met} |"
                    )
    _write(rows, verdicts, args)


def _write(rows: list[str], verdicts: list[str], args: argparse.Namespace) -> None:
    text = f"""## The sandbox's cost on a cold start (on vs off)

Command: `make bench-sandbox` (`.venv/bin/python bench/sandbox.py --samples {args.samples}
--rounds {args.rounds}`), one run, rounds alternating off and on. Machine: {machine()}.

Scale from zero through the Platform (no HTTP). "off" is `--sandbox off`; "on" is the default
as root: own uid, private root, /proc, /dev, IPC, per-instance /tmp, pids cgroup. (s): the
pre-forked spare takes the call (its /tmp was made when it was forked); (d) no spare: each
start forks the template and the instance layers its /tmp over the template's on the way; (a)
a fresh process per instance, which builds the whole sandbox itself.

| function | case | samples | off p50 ms | on p50 ms | on - off | on / off |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

| goal | target | measured | |
|---|---|---|---|
{chr(10).join(verdicts)}
"""
    write_section("sandbox", text)


if __name__ == "__main__":
    asyncio.run(main())
