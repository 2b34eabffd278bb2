"""mlambda against the peers a user would pick instead, side by side in one run.

    make bench-peers          # .venv/bin/python bench/peers/run.py
    .venv/bin/python bench/peers/run.py --peers mlambda,fastapi --models m1 --quick
    .venv/bin/python bench/peers/run.py --variants equal       # only the equal-resources rows

For every peer (bench/peers/<peer>/peer.py) and model (M1 random forest, M2 ONNX MLP, M3
MiniLM; see common.py): its own virtual environment under ~/.cache/mlambda-bench/, the service
started from its directory, then
  1. cold start: process launch -> first correct answer, 5 launches (min/median/max); and for
     a platform that scales to zero while running, request -> answer from zero;
  2. warm latency at concurrency 1: p50/p90/p99 over 2,000 requests (wrk);
  3. throughput and p50/p99 at concurrency 32 for 15 s (wrk, one thread);
  4. peak RSS of the serving process tree, idle and under the concurrency-32 load.
Every answer checked before measuring must match the model's own prediction. Results: the
"peers" section of bench/RESULTS.md and a PNG chart per metric in bench/peers/charts/.

Two variants (--variants, both by default):
- default: every platform as it comes (mlambda max_instances 4; one worker for each peer);
- equal: the same process count on both sides: mlambda with max_instances = 1, and each peer
  with as many workers as mlambda has instances by default (uvicorn --workers 4, BentoML
  workers=4, LitServe workers_per_device=4, MLServer parallel_workers=4, Ray Serve
  num_replicas=4). One launch (no cold-start statistics, no scale from zero), then 2-4 once the
  process tree is idle (every worker has loaded the model).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
# Appended, not prepended: the peer folders (fastapi/, bentoml/...) must not shadow packages.
sys.path += [str(HERE), str(HERE.parent)]

import common  # noqa: E402

PEERS = ["mlambda", "fastapi", "litserve", "bentoml", "mlserver", "rayserve"]
VARIANTS = ["default", "equal"]
MODEL_NAMES = {"m1": "M1 forest", "m2": "M2 ONNX MLP", "m3": "M3 MiniLM"}
START_TIMEOUT_S = 240


@dataclasses.dataclass
class Outcome:
    peer: str
    model: str
    variant: str = "default"
    workers: int = 1  # the peer's processes (workers, replicas) or mlambda's max_instances
    cold: list[float] = dataclasses.field(default_factory=list)
    from_zero: list[float] = dataclasses.field(default_factory=list)
    warm: dict[str, float] = dataclasses.field(default_factory=dict)
    load: dict[str, float] = dataclasses.field(default_factory=dict)
    rss_idle_mib: float = 0.0
    rss_load_mib: float = 0.0
    pss_idle_mib: float = 0.0
    pss_load_mib: float = 0.0
    error: str = ""


def workers(name: str, peer: ModuleType, variant: str) -> int:
    """How many serving processes the peer runs in this variant. Equal resources: mlambda gets
    one instance, as a peer runs one worker by default, and a peer gets as many workers as mlambda
    has instances by default (its max_instances)."""
    if variant == "default":
        return int(peer.WORKERS)
    return 1 if name == "mlambda" else int(common.load_peer("mlambda").WORKERS)


def label(peer: ModuleType, count: int) -> str:
    """The peer and its process count: "mlambda (1 instance)", "FastAPI (4 workers)"."""
    one, many = getattr(peer, "UNIT", ("worker", "workers"))
    return f"{peer.NAME} ({count} {one if count == 1 else many})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- one server ---------------------------------------------------------------------------------


class Service:
    """One peer serving one model: started in its own session, stopped by process group."""

    def __init__(
        self,
        peer: ModuleType,
        python: Path,
        model: str,
        path: Path,
        log: Path,
        command: Any = None,
        workers: int = 1,
    ) -> None:
        self.peer, self.python, self.model, self.path, self.log = peer, python, model, path, log
        self.command = command or peer.command
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "MODEL": self.model,
            "MODEL_PATH": str(self.path),
            "PORT": str(self.port),
            "WORKERS": str(self.workers),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("VIRTUAL_ENV", None)
        argv = self.command(str(self.python), self.model, str(self.path), self.port, self.workers)
        with self.log.open("ab") as log:
            log.write(f"\n$ {' '.join(argv)}\n".encode())
            self.process = subprocess.Popen(
                argv,
                cwd=HERE / self.peer.__name__.removeprefix("peer_"),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def first_answer(self, example: Any, expected: list[float]) -> float:
        """Seconds from now until a correct answer (the process was just started)."""
        started = time.perf_counter()
        path, body = self.peer.request(self.model, example)
        with httpx.Client(timeout=30) as client:
            while time.perf_counter() - started < START_TIMEOUT_S:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"exited with {self.process.returncode}; see {self.log}")
                try:
                    response = client.post(self.url(path), json=body)
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                if response.status_code == 200:
                    check(self.model, self.peer.answer(self.model, response.json()), expected)
                    return time.perf_counter() - started
                time.sleep(0.05)
        raise TimeoutError(f"no answer within {START_TIMEOUT_S} s; see {self.log}")

    def pids(self) -> list[int]:
        """The serving process tree: the session we started and every descendant."""
        assert self.process is not None
        parents: dict[int, int] = {}
        sessions: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
                sessions[int(entry.name)] = int(fields[3])
        tree = {self.process.pid} | {p for p, s in sessions.items() if s == self.process.pid}
        grew = True
        while grew:
            children = {p for p, parent in parents.items() if parent in tree} - tree
            tree |= children
            grew = bool(children)
        return sorted(tree)

    def memory_mib(self) -> tuple[float, float]:
        """(RSS, PSS) of the tree, MiB. RSS counts a page shared by forked processes once per
        process; PSS divides it among them, so its sum is what the tree really holds."""
        rss = pss = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, ValueError, IndexError):
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        return rss / 1024, pss / 1024

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the live processes of the tree have used so far."""
        ticks = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def settle(self, timeout: float = 120.0, busy: float = 0.5) -> float:
        """Wait until the tree uses under ``busy`` cores over a second; the seconds waited. With
        several workers the first answer comes from the first one ready, while the others may
        still be loading their copy of the model."""
        started = time.monotonic()
        before = self.cpu_seconds()
        while time.monotonic() - started < timeout:
            time.sleep(1)
            now = self.cpu_seconds()
            if now - before < busy:
                break
            before = now
        else:
            print(f"  still busy after {timeout:.0f} s; measuring anyway", flush=True)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process is None:
            return
        pids = self.pids()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=10)
                if sig == signal.SIGTERM:
                    time.sleep(0.5)  # let its children go too before the next launch
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.process = None


def check(model: str, got: list[float], expected: list[float]) -> None:
    got_array, want = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got_array.shape != want.shape or not np.allclose(got_array, want, rtol=1e-3, atol=1e-4):
        raise AssertionError(f"{model}: wrong answer {got_array[:4]}... expected {want[:4]}...")


# -- load -------------------------------------------------------------------------------------


def wrk(url: str, body: dict[str, Any], connections: int, duration: int) -> dict[str, float]:
    """One wrk run: POST the same JSON body on ``connections`` connections for ``duration`` s."""
    lua = (
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{json.dumps(body)}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    argv = [
        *("wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "30s"),
        *("-s", script.name, url),
    ]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    latency = dict(re.findall(r"^\s+(50|90|99)%\s+([\d.]+\w+)\s*$", out, re.MULTILINE))
    if len(latency) < 3:
        raise RuntimeError(f"wrk gave no latency distribution:\n{out}")
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": float(total.group(1)) if total else 0.0,
        "p50": _ms(latency["50"]),
        "p90": _ms(latency["90"]),
        "p99": _ms(latency["99"]),
        "errors": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if socket_errors else 0.0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


# -- one peer, one model ----------------------------------------------------------------------


def measure(
    peer: ModuleType,
    python: Path,
    model: str,
    path: Path,
    case: Any,
    args: argparse.Namespace,
    variant: str = "default",
) -> Outcome:
    """One peer serving one model in one variant. The equal-resources variant launches once
    and skips the scale-from-zero timing: its rows are about throughput, latency and memory."""
    example, expected = case
    name = peer.__name__.removeprefix("peer_")
    count = workers(name, peer, variant)
    outcome = Outcome(name, model, variant, count)
    log = args.logs / (
        f"{name}-{model}.log" if variant == "default" else f"{name}-{model}-x{count}.log"
    )
    tag = f"{name} {model}" + ("" if variant == "default" else f" x{count}")
    service = Service(peer, python, model, path, log, workers=count)
    launches = args.launches if variant == "default" else 1
    began = time.monotonic()
    try:
        for launch in range(launches):
            service.start()
            outcome.cold.append(service.first_answer(example, expected))
            print(f"  {tag} launch {launch + 1}: {outcome.cold[-1]:.2f} s", flush=True)
            if launch < launches - 1:
                service.stop()
        time.sleep(2)
        if variant != "default":  # several workers: all of them loaded, before measuring
            print(f"  {tag} settled after {service.settle() + 2:.0f} s", flush=True)
        outcome.rss_idle_mib, outcome.pss_idle_mib = service.memory_mib()
        route, body = peer.request(model, example)
        url = service.url(route)
        wrk(url, body, 4, 2)  # warm-up
        # wrk runs for a duration: one sized from a short run to give about --requests answers.
        pace = wrk(url, body, 1, 2)["rps"]
        seconds = max(2, min(120, math.ceil(1.1 * args.requests / max(pace, 0.1))))
        outcome.warm = wrk(url, body, 1, seconds)
        print(f"  {tag} warm: {outcome.warm}", flush=True)
        sampler = _RssSampler(service)
        with sampler:
            outcome.load = wrk(url, body, 32, args.duration)
        outcome.rss_load_mib, outcome.pss_load_mib = sampler.peak, sampler.peak_pss
        print(
            f"  {tag} c32: {outcome.load} peak RSS {sampler.peak:.0f} MiB,"
            f" PSS {sampler.peak_pss:.0f} MiB",
            flush=True,
        )
        # Still right after the load?
        with httpx.Client(timeout=30) as client:
            check(model, peer.answer(model, client.post(url, json=body).json()), expected)
        # Scale from zero: measured in the default variant only.
        if variant == "default" and hasattr(peer, "prepare_zero"):
            peer.prepare_zero(service.url(""), model, str(path))
            outcome.from_zero = from_zero(peer, service, model, example, expected, args)
        elif variant == "default" and hasattr(peer, "command_scale_to_zero"):
            service.stop()
            outcome.from_zero = replica_from_zero(peer, python, model, path, case, args)
    except Exception as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        service.stop()
    print(f"  {tag} took {time.monotonic() - began:.0f} s", flush=True)
    return outcome


def from_zero(
    peer: ModuleType,
    service: Service,
    model: str,
    example: Any,
    expected: list[float],
    args: argparse.Namespace,
) -> list[float]:
    """Request -> answer while the platform runs with no instance of the model."""
    route, body = peer.zero_request(model, example)
    timings = []
    with httpx.Client(timeout=120) as client:
        client.post(service.url(route), json=body)  # builds what a start needs
        for _ in range(args.launches):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                rows = client.get(service.url("/v1/instances")).json()["processes"]
                if peer.instances(model, rows) == 0:
                    break
                time.sleep(0.2)
            time.sleep(0.5)  # the pre-forked spare (if any) is back in place
            started = time.perf_counter()
            response = client.post(service.url(route), json=body)
            timings.append(time.perf_counter() - started)
            check(model, peer.answer(model, response.json()), expected)
    return timings


def replica_from_zero(
    peer: ModuleType, python: Path, model: str, path: Path, case: Any, args: argparse.Namespace
) -> list[float]:
    """A peer started with its scale-to-zero settings: once its last replica has stopped
    (no process named ZERO_MARKER left), request -> answer."""
    example, expected = case
    name = peer.__name__.removeprefix("peer_")
    log = args.logs / f"{name}-{model}-zero.log"
    service = Service(peer, python, model, path, log, peer.command_scale_to_zero)
    route, body = peer.request(model, example)
    timings = []
    try:
        service.start()
        service.first_answer(example, expected)
        with httpx.Client(timeout=300) as client:
            for _ in range(args.zero_samples):
                deadline = time.monotonic() + 300
                while any(peer.ZERO_MARKER in _cmdline(p) for p in service.pids()):
                    if time.monotonic() > deadline:
                        raise TimeoutError("the replica never stopped")
                    time.sleep(1)
                time.sleep(2)
                started = time.perf_counter()
                response = client.post(service.url(route), json=body)
                timings.append(time.perf_counter() - started)
                check(model, peer.answer(model, response.json()), expected)
                print(f"  {name} {model} from zero: {timings[-1]:.2f} s", flush=True)
    finally:
        service.stop()
    return timings


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


class _RssSampler:
    """Peak RSS of the serving tree while a load runs (sampled every 0.5 s)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.peak = 0.0
        self.peak_pss = 0.0
        self._stop = False

    def __enter__(self) -> _RssSampler:
        import threading

        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop:
            rss, pss = self.service.memory_mib()
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)
            time.sleep(0.5)

    def __exit__(self, *_: object) -> None:
        self._stop = True
        self._thread.join()


# -- the run ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--models", default="m1,m2,m3")
    parser.add_argument("--launches", type=int, default=5, help="cold starts per peer and model")
    parser.add_argument("--requests", type=int, default=2000, help="warm requests, concurrency 1")
    parser.add_argument("--duration", type=int, default=15, help="seconds at concurrency 32")
    parser.add_argument(
        "--zero-samples",
        type=int,
        default=2,
        help="scale-from-zero samples of a peer that needs a minute to go back to zero (Ray Serve)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="default: each platform as it comes; equal: mlambda with 1 instance and each peer "
        "with as many workers as mlambda's max_instances (4); both by default",
    )
    parser.add_argument("--quick", action="store_true", help="2 launches, 300 requests, 5 s")
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    args = parser.parse_args()
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"unknown variant {', '.join(sorted(unknown))}: choose from {VARIANTS}")
    args.variants = [v for v in VARIANTS if v in variants]
    if args.quick:
        args.launches, args.requests, args.duration = 2, 300, 5
    args.logs = common.CACHE / "logs"
    args.logs.mkdir(parents=True, exist_ok=True)
    started = time.time()
    print("building models", flush=True)
    cases = common.build_models()
    paths = common.model_paths()
    outcomes: list[Outcome] = []
    peers: dict[str, dict[str, Any]] = {}
    for name in args.peers.split(","):
        peer = common.load_peer(name)
        print(f"{peer.NAME}: environment", flush=True)
        try:
            python = environment(name, peer, args)
        except subprocess.CalledProcessError as exc:
            tail = (args.logs / f"{name}-install.log").read_text()[-2000:]
            peers[name] = {"name": peer.NAME, "error": f"install failed ({exc}):\n{tail}"}
            continue
        packages = ["mlambda"] if name == "mlambda" else [p.split("[")[0] for p in peer.PACKAGES]
        packages = [re.split(r"[<>=!~ \[]", p)[0] for p in packages]
        counts = {variant: workers(name, peer, variant) for variant in args.variants}
        peers[name] = {
            "name": peer.NAME,
            "versions": common.versions(
                python, [*packages, "torch", "onnxruntime", "scikit-learn"]
            ),
            # Per variant: the process count, its row label and the settings it ran with.
            "variants": {
                variant: {
                    "workers": count,
                    "label": label(peer, count),
                    "settings": peer.settings(count),
                }
                for variant, count in counts.items()
            },
        }
        for variant in args.variants:
            for model in args.models.split(","):
                print(f"{peers[name]['variants'][variant]['label']} {model}", flush=True)
                outcomes.append(
                    measure(peer, python, model, paths[model], cases[model], args, variant)
                )
    minutes = (time.time() - started) / 60
    if not args.no_write:
        import report

        report.write(outcomes, peers, args, minutes)


def environment(name: str, peer: ModuleType, args: argparse.Namespace) -> Path:
    if name == "mlambda":
        return common.ROOT / ".venv" / "bin" / "python"
    return common.venv(name, list(peer.PACKAGES), args.logs / f"{name}-install.log")


if __name__ == "__main__":
    main()
