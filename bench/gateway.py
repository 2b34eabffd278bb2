"""The HTTP stack, side by side in one run: mlambda's `hello` against a bare Starlette app that
answers the same JSON, both on the same uvicorn settings.

    .venv/bin/python bench/gateway.py [--duration 10] [--rounds 3]

The bare app is what a hand-written service costs on this machine: one route, no auth, no
pool, the same uvicorn settings as `mlambda serve` (httptools, uvloop where installed).
mlambda runs as `make serve` does (zygote backend, auth on: each request carries the admin
key) with `examples/hello`. wrk posts one small JSON event per request: throughput at
concurrency 32, and p50 at concurrency 1 (the overhead of one call over the bare app). The two
take turns, --rounds times each, and the best round of each counts (the others were disturbed
by something else on the machine). Writes the "http" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from models import wrk
from results import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.system.conftest import Server, free_port  # noqa: E402

EVENT = b'{"name": "bench"}'

# The bare app: the same answer as examples/hello, nothing else.
BARE = """
import uuid

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request):
    event = await request.json()
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    return JSONResponse({"message": f"Hello, {name}!", "request_id": str(uuid.uuid4())})


app = Starlette(routes=[Route("/hello", hello, methods=["POST"])])
"""


def uvicorn_http() -> str:
    """What uvicorn picks for http="auto", as `mlambda serve` runs it."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def serve_loop() -> str:
    """The event loop `mlambda serve` runs on (serve_cli.py): uvloop where it is installed."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


class Bare:
    def __init__(self, root: Path) -> None:
        (root / "bare_app.py").write_text(BARE)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hello"
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(self.port)),
                *("--log-level", "warning", "--no-access-log"),
                *("--http", uvicorn_http(), "--loop", serve_loop()),
            ],
            cwd=root,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.post(self.url, content=EVENT, timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("the bare app did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=15)


# Where the gateway's time goes: each py-spy sample counts for the innermost frame that falls
# in one of these, in this order of precedence.
CATEGORIES = (
    ("observe: function logs, metrics, REPORT", ("mlambda/observe/",)),
    ("pool, instance I/O, router", ("mlambda/pool/", "mlambda/platform.py", "mlambda/router.py")),
    ("auth, rate limits", ("mlambda/gateway/auth.py", "mlambda/security/")),
    ("invoke route: body, response", ("mlambda/gateway/",)),
    ("Starlette: routing, middleware", ("starlette/",)),
    ("uvicorn + httptools: parsing, socket writes", ("uvicorn/", "httptools")),
    ("event loop (asyncio, uvloop): tasks, futures, streams", ("asyncio/", "uvloop")),
)


def profile(server: Server, url: str, duration: int) -> list[tuple[str, float]]:
    """Sample `serve` with py-spy while wrk loads it at c=32: the share of each category."""
    out = Path(tempfile.mkstemp(suffix=".txt")[1])
    assert server.process is not None
    spy = subprocess.Popen(
        [
            *(str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking"),
            *("-p", str(server.process.pid), "-d", str(duration), "-r", "200"),
            *("-f", "raw", "-o", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wrk(url, EVENT, server.key, 32, duration + 2)
    spy.wait(timeout=60)
    counts: dict[str, int] = {}
    for line in out.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        category = next(
            (
                name
                for frame in reversed(stack.split(";"))
                for name, keys in CATEGORIES
                if any(key in frame for key in keys)
            ),
            "other (interpreter, C code outside these)",
        )
        counts[category] = counts.get(category, 0) + int(samples)
    out.unlink()
    total = sum(counts.values()) or 1
    return sorted(((c, n / total) for c, n in counts.items()), key=lambda x: -x[1])


def tree_cpu(root: int) -> dict[int, int]:
    """CPU time (clock ticks) of ``root`` and every process below it, by pid."""
    parents, used = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        used[pid] = int(fields[11]) + int(fields[12])  # utime + stime
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return {pid: used[pid] for pid in tree if pid in used}


def cpu_per_request(
    root: int,
    before: dict[int, int],
    after: dict[int, int],
    run: dict[str, float],
    args: argparse.Namespace,
) -> dict[str, float]:
    """Microseconds of CPU per request: the server process itself, and what runs below it."""
    requests = run["rps"] * args.duration
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")

    def per_request(pids: list[int]) -> float:
        ticks = sum(after[pid] - before.get(pid, 0) for pid in pids if pid in after)
        return ticks * tick_us / requests

    return {
        "cpu_server_us": per_request([root]),
        "cpu_below_us": per_request([pid for pid in after if pid != root]),
    }


def best(runs: list[dict[str, float]], key: str, higher: bool) -> float:
    values = [r[key] for r in runs]
    return max(values) if higher else min(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the py-spy breakdown of the gateway"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-http-"))
    bare = Bare(root)
    server = Server(root / "data", "--deploy", str(ROOT / "examples" / "hello")).start()
    mlambda_url = f"{server.url}/v1/functions/hello/invoke"
    runs: dict[str, dict[int, list[dict[str, float]]]] = {"bare": {}, "mlambda": {}}
    try:
        for _ in range(args.rounds):
            for connections in (32, 1):
                for name, url, key in (
                    ("bare", bare.url, ""),
                    ("mlambda", mlambda_url, server.key),
                ):
                    pid = bare.process.pid if name == "bare" else server.process.pid
                    before = tree_cpu(pid)
                    run = wrk(url, EVENT, key, connections, args.duration)
                    assert run["errors"] == 0, (name, run)
                    if connections == 32:
                        run.update(cpu_per_request(pid, before, tree_cpu(pid), run, args))
                    runs[name].setdefault(connections, []).append(run)
        shares = [] if args.no_profile else profile(server, mlambda_url, args.duration)
    finally:
        server.stop()
        bare.stop()
    _write(runs, shares, args)


def _write(
    runs: dict[str, dict[int, list[dict[str, float]]]],
    shares: list[tuple[str, float]],
    args: argparse.Namespace,
) -> None:
    rps = {name: best(runs[name][32], "rps", True) for name in runs}
    p50 = {name: best(runs[name][1], "p50", False) for name in runs}
    share = rps["mlambda"] / rps["bare"]
    overhead = p50["mlambda"] - p50["bare"]
    rows = [
        f"| bare Starlette | {rps['bare']:,.0f} | {p50['bare']:.2f} |",
        f"| mlambda `hello` | {rps['mlambda']:,.0f} | {p50['mlambda']:.2f} |",
    ]
    met = ("met" if share >= 0.5 else "not met", "met" if overhead <= 0.3 else "not met")
    text = f"""
## HTTP stack: mlambda `hello` beside a bare Starlette app

Command: `.venv/bin/python bench/gateway.py --duration {args.duration} --rounds {args.rounds}`.
Machine: {machine()}. uvicorn with {uvicorn_http()} on {serve_loop()} for
both; mlambda as `make serve` runs it (zygote backend, auth on) with `examples/hello`; the bare
app answers the same JSON on one route. wrk (1 thread) posts a small JSON event; the two take
turns, {args.rounds} rounds of {args.duration} s each, best round of each.

| server | requests/s at c=32 | p50 ms at c=1 |
|---|---|---|
{chr(10).join(rows)}

| goal | target | measured | |
|---|---|---|---|
| hello at c=32 vs the bare app | >= 50% | {share:.0%} | {met[0]} |
| warm no-op overhead over the bare app, p50 at c=1 | <= 0.3 ms | {overhead:+.2f} ms | {met[1]} |
"""
    cpu = {name: min(runs[name][32], key=lambda r: r["cpu_server_us"]) for name in runs}
    text += f"""
CPU per request at c=32 (from /proc, the same runs): the bare app's process
{cpu["bare"]["cpu_server_us"]:.0f} µs; mlambda's `serve` (HTTP, auth, pool, the instance's socket,
logs and metrics) {cpu["mlambda"]["cpu_server_us"]:.0f} µs, its instances and zygotes
{cpu["mlambda"]["cpu_below_us"]:.0f} µs. At c=32 `serve` is the bottleneck: one process on one
core, so its throughput is about 1 s / its CPU per request.
"""
    if shares:
        text += f"""
Where the gateway's time goes at c=32 (py-spy samples of `serve` over {args.duration} s, each
counted for the innermost frame in one of these; the `serve` process uses one core at this
load, the instances and wrk share the other):

| part | share of the gateway's samples |
|---|---|
""" + "\n".join(f"| {name} | {share:.0%} |" for name, share in shares)
    write_section("http", text)
    print(text)


if __name__ == "__main__":
    os.environ.pop("MLAMBDA_URL", None)
    main()
