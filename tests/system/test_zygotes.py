"""The zygote backend: instances forked from function templates, with fresh per-instance state."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import time

import pytest

from tests.models import build
from tests.system.conftest import Server
from tests.system.test_invoke import _gone

STATEFUL = """
    import os, random, threading

    CALLS = []  # module global: set at init in the template, appended per instance

    def handler(event, context):
        CALLS.append(context.aws_request_id)
        if event.get("hold"):
            threading.Event().wait(event["hold"])
        return {"pid": os.getpid(), "calls": len(CALLS), "random": random.random()}
"""

THREADED = """
    import os, threading

    STOP = threading.Event()
    WORKER = threading.Thread(target=STOP.wait, name="warmup-poller", daemon=True)
    WORKER.start()

    def handler(event, context):
        return {"pid": os.getpid(), "threads": threading.active_count()}
"""


@pytest.fixture
def zygote_server(tmp_path):
    running = Server(tmp_path / "data", "--backend", "zygote").start()
    yield running
    running.stop()


def _starts(server: Server, function: str) -> dict[str, float]:
    metrics = server.http("GET", "/metrics").text
    labels = rf'function="{function}",tier="(\w+)",version="\$LATEST"'
    pattern = rf"mlambda_instance_start_total{{{labels}}} (\S+)"
    return {tier: float(count) for tier, count in re.findall(pattern, metrics)}


def test_cold_start_after_scale_to_zero_forks_from_the_kept_template(zygote_server, make_function):
    zygote_server.deploy(make_function("stateful", STATEFUL, keep_alive_s=0.3))
    first = json.loads(zygote_server.client.invoke("stateful", b"{}"))
    assert _gone(first["pid"], within=5)
    second = json.loads(zygote_server.client.invoke("stateful", b"{}"))
    assert second["pid"] != first["pid"]
    assert second["calls"] == 1  # state set after init is the instance's own
    assert _starts(zygote_server, "stateful") == {"template": 2.0}
    reports = [
        line
        for line in "".join(zygote_server.client.logs("stateful")).splitlines()
        if "REPORT" in line
    ]
    # The second start was one fork of the template: no zygote or template built, no init run.
    assert "Init Breakdown: tier template, prepare 0.00 ms" in reports[1]
    assert "import 0.00 ms, init 0.00 ms" in reports[1]


def test_instances_forked_together_do_not_share_state_or_random_streams(
    zygote_server, make_function
):
    zygote_server.deploy(make_function("stateful", STATEFUL, max_instances=2))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        replies = list(
            pool.map(lambda _: zygote_server.client.invoke("stateful", b'{"hold": 0.5}'), range(2))
        )
    a, b = (json.loads(r) for r in replies)
    assert a["pid"] != b["pid"]
    assert a["calls"] == b["calls"] == 1
    assert a["random"] != b["random"]


def test_init_that_starts_a_thread_is_served_with_init_after_the_fork(zygote_server, make_function):
    zygote_server.deploy(make_function("threaded", THREADED))
    reply = json.loads(zygote_server.client.invoke("threaded", b"{}"))
    assert reply["threads"] == 2  # its own poller thread runs in the instance
    # No preload: the instance forks from the base zygote and runs init after the fork.
    assert _starts(zygote_server, "threaded") == {"base": 1.0}
    logs = "".join(zygote_server.client.logs("threaded"))
    assert "not forking instances of threaded from a template" in logs
    assert "warmup-poller" in logs


def test_killing_serve_leaves_no_zygote_template_or_instance(tmp_path, make_function):
    server = Server(tmp_path / "data", "--backend", "zygote").start()
    try:
        server.deploy(make_function("stateful", STATEFUL, preload=["json"]))
        json.loads(server.client.invoke("stateful", b"{}"))
        assert server.process is not None
        family = _descendants(server.process.pid)
        assert len(family) >= 4  # base zygote, runtime zygote, template, instance
    finally:
        server.stop(signal.SIGKILL)
    assert all(_gone(pid, within=5) for pid in family)


def test_a_crashed_template_instance_is_replaced_by_a_fresh_fork(zygote_server, make_function):
    zygote_server.deploy(make_function("stateful", STATEFUL))
    pid = json.loads(zygote_server.client.invoke("stateful", b"{}"))["pid"]
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    again = json.loads(zygote_server.client.invoke("stateful", b"{}"))
    assert again["pid"] != pid and again["calls"] == 1


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def _wait_for(predicate, within: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _templates(server: Server) -> set[str]:
    return {r["function"] for r in server.client.processes() if r["kind"] == "template"}


def _last_report(server: Server, name: str) -> str:
    lines = "".join(server.client.logs(name)).splitlines()
    return [line for line in lines if "REPORT" in line][-1]


def test_an_idle_template_expires_after_its_keep_alive_and_comes_back(zygote_server, make_function):
    zygote_server.deploy(
        make_function("brief", STATEFUL, keep_alive_s=0.2, template_keep_alive_s=0.5)
    )
    pid = json.loads(zygote_server.client.invoke("brief", b"{}"))["pid"]
    assert _gone(pid, within=5)
    assert _wait_for(lambda: "brief" not in _templates(zygote_server))

    assert json.loads(zygote_server.client.invoke("brief", b"{}"))["calls"] == 1
    report = _last_report(zygote_server, "brief")
    assert "tier template" in report and "prepare 0.00 ms" not in report  # rebuilt for it


def test_memory_budget_evicts_the_least_recently_used_idle_template(tmp_path, make_function):
    server = Server(tmp_path / "data", "--zygote-memory-mb", "1").start()
    try:
        server.deploy(make_function("first", STATEFUL, preload=["json"]))
        assert _wait_for(lambda: "first" in _templates(server))
        server.deploy(make_function("second", STATEFUL, preload=["csv"]))
        assert _wait_for(lambda: "second" in _templates(server))
        assert "first" not in _templates(server)  # idle, least recently used: evicted

        reply = json.loads(server.client.invoke("first", b"{}"))  # colder, not broken
        assert reply["calls"] == 1
        assert "prepare 0.00 ms" not in _last_report(server, "first")
        assert json.loads(server.client.invoke("second", b"{}"))["calls"] == 1
    finally:
        server.stop()


def test_serve_builds_the_runtime_zygotes_of_deployed_functions_at_start(tmp_path, make_function):
    data = tmp_path / "data"
    first = Server(data).start()
    try:
        first.deploy(make_function("needs_csv", STATEFUL, preload=["csv"]))
    finally:
        first.stop()
    second = Server(data).start()
    try:

        def runtimes() -> set[str]:
            return {r["function"] for r in second.client.processes() if r["kind"] == "runtime"}

        assert _wait_for(lambda: "csv" in runtimes())
        assert "needs_csv" not in _templates(second)  # templates are built on demand
        assert json.loads(second.client.invoke("needs_csv", b"{}"))["calls"] == 1
    finally:
        second.stop()


def _spares(server: Server) -> dict[str, int]:
    return {r["function"]: r["pid"] for r in server.client.processes() if r["kind"] == "spare"}


def test_a_preforked_spare_serves_the_next_cold_start_and_is_replaced(zygote_server, make_function):
    zygote_server.deploy(make_function("ready", STATEFUL))
    assert _wait_for(lambda: "ready" in _spares(zygote_server))
    spare = _spares(zygote_server)["ready"]

    reply = json.loads(zygote_server.client.invoke("ready", b"{}"))
    assert reply["pid"] == spare and reply["calls"] == 1
    assert _wait_for(lambda: _spares(zygote_server).get("ready") not in (None, spare))
    assert "tier template" in _last_report(zygote_server, "ready")


SLEEPY = """
    import os, time

    def handler(event, context):
        time.sleep(event.get("seconds", 0))
        return {"pid": os.getpid()}
"""


def _started_s(pid: int) -> float:
    """When a process started, in seconds of CLOCK_BOOTTIME (/proc's clock)."""
    with open(f"/proc/{pid}/stat") as stat:
        ticks = int(stat.read().rpartition(")")[2].split()[19])
    return ticks / os.sysconf("SC_CLK_TCK")


def test_the_next_spare_is_forked_once_the_first_call_is_answered(zygote_server, make_function):
    zygote_server.deploy(make_function("calm", SLEEPY, keep_alive_s=0.3))
    assert _wait_for(lambda: "calm" in _spares(zygote_server))
    taken = _spares(zygote_server)["calm"]

    # A short first call: its instance (the spare) answers before the next spare is forked,
    # which would otherwise compete with it for the cores.
    called = time.clock_gettime(time.CLOCK_BOOTTIME)
    reply = json.loads(zygote_server.client.invoke("calm", b'{"seconds": 0.12}'))
    assert reply["pid"] == taken
    assert _wait_for(lambda: _spares(zygote_server).get("calm") not in (None, taken))
    assert _started_s(_spares(zygote_server)["calm"]) >= called + 0.1

    # A long first call does not leave the template without a spare while it runs.
    assert _gone(taken, within=5)  # back to zero instances
    assert _wait_for(lambda: "calm" in _spares(zygote_server))
    taken = _spares(zygote_server)["calm"]
    with concurrent.futures.ThreadPoolExecutor(1) as calls:
        long_call = calls.submit(zygote_server.client.invoke, "calm", b'{"seconds": 3}')
        assert _wait_for(lambda: _spares(zygote_server).get("calm") not in (None, taken), 2)
        assert not long_call.done()
        assert json.loads(long_call.result())["pid"] == taken


def _niceness(pid: int, task: str = "") -> int:
    with open(f"/proc/{pid}/task/{task}/stat" if task else f"/proc/{pid}/stat") as stat:
        return int(stat.read().rpartition(")")[2].split()[16])


def _threads(pid: int) -> list[str]:
    return os.listdir(f"/proc/{pid}/task")


@pytest.mark.skipif(os.geteuid() != 0, reason="restoring a niceness needs root (CAP_SYS_NICE)")
def test_a_spare_prepares_in_the_background_and_serves_at_normal_priority(
    zygote_server, make_function
):
    zygote_server.deploy(make_function("polite", SLEEPY))
    assert _wait_for(lambda: "polite" in _spares(zygote_server))
    spare = _spares(zygote_server)["polite"]
    assert _niceness(spare) == 10  # calls being served go first on shared cores
    reply = json.loads(zygote_server.client.invoke("polite", b"{}"))
    assert reply["pid"] == spare
    assert _niceness(spare) == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="restoring a niceness needs root (CAP_SYS_NICE)")
def test_every_thread_of_a_taken_spare_is_back_at_normal_priority(zygote_server, tmp_path):
    # An ONNX model's spare builds its session while it waits: the session's threads are
    # started then, at the spare's priority.
    path, batch, _ = build.onnx_mlp(tmp_path)
    zygote_server.deploy_path(path, name="mlp")
    assert _wait_for(lambda: "mlp" in _spares(zygote_server))
    spare = _spares(zygote_server)["mlp"]
    assert _wait_for(lambda: len(_threads(spare)) >= 2)
    zygote_server.client.invoke("mlp", json.dumps({"inputs": batch.tolist()}).encode())
    assert {_niceness(spare, task) for task in _threads(spare)} == {0}


def test_no_spare_is_kept_when_the_setting_is_off(tmp_path, make_function):
    server = Server(tmp_path / "data", "--no-prefork-spare").start()
    try:
        server.deploy(make_function("plain", STATEFUL))
        assert _wait_for(lambda: "plain" in _templates(server))
        assert json.loads(server.client.invoke("plain", b"{}"))["calls"] == 1
        assert _spares(server) == {}
    finally:
        server.stop()
