"""The console's pages against their budget: 100 ms of server time each, with 200 functions
deployed and called.

    .venv/bin/python bench/console.py [--functions 200] [--repeat 20]

One platform, `--functions` handler functions each called 3 times (so each has an instance,
a history and recent invocations), one dead letter; then each page is fetched `--repeat` times
by a signed-in client on this machine, and its median time is reported (the client and the
loopback add a few hundred microseconds to the server's own). Writes the "console" section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from results import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import write_function  # noqa: E402
from tests.system.conftest import Server  # noqa: E402

HANDLER = "def handler(event, context):\n    return {'ok': True}\n"
BUDGET_MS = 100.0


def signed_in(server: Server) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=60)
    answer = client.post("/console/login", data={"key": server.key})
    assert answer.status_code == 303, answer.text
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    names = [f"fn-{n:03d}" for n in range(args.functions)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = Server(root / "data").start()
        try:
            for name in names:
                server.deploy(write_function(root, name, HANDLER))

            def call(name: str) -> None:
                for _ in range(3):
                    server.client.invoke(name, b"{}")

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                list(pool.map(call, names))
            recent = server.http("GET", f"/v1/functions/{names[0]}/logs", params={"tail": 5})
            request_id = next(
                line.split("RequestId: ")[1].split()[0]
                for line in recent.text.splitlines()
                if "REPORT RequestId" in line
            )
            client = signed_in(server)
            pages = {
                "functions": "/console",
                "function": f"/console/functions/{names[0]}",
                "function (day)": f"/console/functions/{names[0]}?window=day",
                "invocation": f"/console/functions/{names[0]}/invocations/{request_id}",
                "async": "/console/async",
                "cost": "/console/cost",
                "alarms": "/console/alarms",
            }
            took = {}
            for title, path in pages.items():
                client.get(path).raise_for_status()  # templates compiled, caches warm
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    client.get(path).raise_for_status()
                    times.append((time.perf_counter() - started) * 1000)
                took[title] = statistics.median(times)
                print(f"{title}: {took[title]:.1f} ms", flush=True)
        finally:
            server.stop()
    lines = [
        "## Console: page times with many functions",
        "",
        f"{machine()}. `make bench-console`: {args.functions} functions deployed, each called",
        f"3 times; each page fetched {args.repeat} times by a signed-in client on this machine",
        "(median, client and loopback included).",
        "",
        "| page | median (ms) | goal | met |",
        "|---|---|---|---|",
    ]
    for title, ms in took.items():
        lines.append(f"| {title} | {ms:.1f} | <= {BUDGET_MS:.0f} ms | "
                     f"{'met' if ms <= BUDGET_MS else 'not met'} |")  # fmt: skip
    write_section("console", "\n".join(lines))


if __name__ == "__main__":
    main()
