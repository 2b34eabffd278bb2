"""A hostile function next to others: every attempt fails inside it, while the platform and
the other functions keep answering with their own code. serve runs as root here (as in CI);
test_sandbox_user.py shows what holds when it does not."""

from __future__ import annotations

import concurrent.futures
import gzip
import io
import json
import os
import signal
import tarfile
import time
from pathlib import Path

import pytest

from tests.system.conftest import Server
from tests.system.test_invoke import _gone

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="serve runs as root in these tests (CI does); see test_sandbox_user"
)

HOSTILE = """
    import os, signal, socket, time

    def attempt(action):
        try:
            return {"ok": True, "value": action()}
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def write(path, size):
        with open(path, "wb") as handle:
            for _ in range(size // 65536):
                handle.write(b"x" * 65536)
        return size

    def daemon():
        read, write_end = os.pipe()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.write(write_end, str(os.getpid()).encode())
                time.sleep(300)
            os._exit(0)
        return int(os.read(read, 32))

    ACTIONS = {
        "read": lambda e: open(e["path"], "rb").read(64).decode("latin-1"),
        "list": lambda e: sorted(os.listdir(e["path"])),
        "write": lambda e: write(e["path"], e.get("size", 65536)),
        "chmod": lambda e: os.chmod(e["path"], 0o777),
        "kill": lambda e: os.kill(e["pid"], signal.SIGKILL),
        "signal": lambda e: os.kill(e["pid"], e["signal"]),
        "connect": lambda e: socket.create_connection((e["host"], e["port"]), timeout=2).close(),
        "daemon": lambda e: daemon(),
        "whoami": lambda e: [os.getuid(), os.getgid(), os.getgroups()],
        "pids": lambda e: sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "siblings": lambda e: sorted(os.listdir(os.path.dirname(os.environ["LAMBDA_TASK_ROOT"]))),
    }

    def handler(event, context):
        return attempt(lambda: ACTIONS[event["action"]](event))
"""

VICTIM = """
    import os

    def handler(event, context):
        return {"code": "original", "uid": os.getuid(), "pid": os.getpid()}
"""


def _try(server: Server, action: str, **event: object) -> dict:
    return json.loads(server.client.invoke("hostile", json.dumps({"action": action, **event})))


def _refused(server: Server, action: str, **event: object) -> str:
    outcome = _try(server, action, **event)
    assert outcome["ok"] is False, (action, event, outcome)
    return str(outcome["error"])


@pytest.fixture
def neighbours(server, make_function):
    server.deploy(make_function("victim", VICTIM))
    server.deploy(make_function("hostile", HOSTILE, ephemeral_storage_mb=32, keep_alive_s=600))
    victim = json.loads(server.client.invoke("victim", b"{}"))
    assert victim["code"] == "original"
    return server, victim


def test_the_platforms_data_and_other_functions_are_out_of_reach(neighbours):
    server, _ = neighbours
    data = server.data_dir
    victim_root = Path(server.client.get("victim")["digest"].replace(":", "-"))
    for path in [
        data / "admin.key",
        data / "registry.db",
        data / "cache" / victim_root / "app.py",
        next((data / "artifacts").rglob("*")),
        Path("/etc/shadow"),
        Path(f"/proc/{server.process.pid}/environ"),
        Path("/proc/1/environ"),
    ]:
        _refused(server, "read", path=str(path))
    # Walking up from its own bundle shows nothing of the platform's, nor other bundles.
    own = server.client.get("hostile")["digest"].replace(":", "-")
    assert _try(server, "siblings")["value"] == [own]
    assert _try(server, "list", path=str(data))["value"] == ["cache"]


def test_it_runs_as_a_uid_of_its_own_with_no_groups(neighbours):
    server, victim = neighbours
    uid, gid, groups = _try(server, "whoami")["value"]
    assert uid >= 100000 and gid == uid and groups == []
    assert victim["uid"] >= 100000 and victim["uid"] != uid


def test_it_sees_only_its_own_processes(neighbours):
    server, victim = neighbours
    seen = _try(server, "pids")["value"]
    assert server.process.pid not in seen and victim["pid"] not in seen
    assert len(seen) <= 3  # itself, and what it runs


def test_it_cannot_signal_the_platform_or_its_neighbours(neighbours):
    server, victim = neighbours
    targets = {p["pid"] for p in server.client.processes() if p["function"] != "hostile"}
    targets |= {server.process.pid, victim["pid"]}
    for pid in targets:
        assert "PermissionError" in _refused(server, "kill", pid=pid)
    for pid in targets:
        os.kill(pid, 0)  # all alive
    assert json.loads(server.client.invoke("victim", b"{}"))["code"] == "original"


def test_its_files_are_read_only_and_its_tmp_is_private_and_bounded(neighbours):
    server, _ = neighbours
    own_root = server.data_dir / "cache" / server.client.get("hostile")["digest"].replace(":", "-")
    assert "Read-only" in _refused(server, "write", path=str(own_root / "app.py"))
    assert "Read-only" in _refused(server, "chmod", path=str(own_root / "app.py"))
    assert "Read-only" in _refused(server, "write", path="/root/planted")
    assert not Path("/root/planted").exists()
    assert _try(server, "write", path="/tmp/scratch", size=1 << 20)["ok"]
    assert not Path("/tmp/scratch").exists()  # its /tmp is not the machine's
    assert "No space" in _refused(server, "write", path="/tmp/filler", size=64 << 20)


def test_altered_code_is_found_on_an_unchanged_deploy_and_after_kill_9(neighbours, make_function):
    server, _ = neighbours
    digest = server.client.get("victim")["digest"]
    planted = server.data_dir / "cache" / digest.replace(":", "-") / "app.py"
    # As the table's attacker did, but as root: the sandbox keeps a function from doing it.
    planted.chmod(0o644)
    planted.write_text("def handler(e, c):\n    return {'code': 'planted'}\n")
    assert server.deploy(make_function("victim", VICTIM))["changed"] is False
    assert json.loads(server.client.invoke("victim", b"{}"))["code"] == "original"

    planted.chmod(0o644)
    planted.write_text("def handler(e, c):\n    return {'code': 'planted'}\n")
    server.stop(signal.SIGKILL)
    server.start()
    assert json.loads(server.client.invoke("victim", b"{}"))["code"] == "original"


def test_a_detached_grandchild_dies_with_the_function(neighbours):
    server, _ = neighbours
    grandchild = _try(server, "daemon")["value"]
    os.kill(grandchild, 0)
    server.client.remove("hostile")
    assert _gone(grandchild, within=5)


@pytest.mark.parametrize("backend", ["process", "zygote"])
def test_a_fork_bomb_stops_at_the_function(tmp_path, make_function, backend):
    bomb = """
        import os, time

        def handler(event, context):
            children = 0
            try:
                while children < 5000:
                    if os.fork() == 0:
                        time.sleep(30)
                        os._exit(0)
                    children += 1
            except OSError as exc:
                return {"children": children, "error": str(exc)}
            return {"children": children}
    """
    server = Server(tmp_path / "data", "--backend", backend, "--instance-pids-max", "64").start()
    try:
        server.deploy(make_function("bomb", bomb, timeout_s=20))
        server.deploy(make_function("bystander", VICTIM))
        outcome = json.loads(server.client.invoke("bomb", b"{}"))
        assert outcome["children"] < 64, outcome
        assert "Resource temporarily unavailable" in outcome["error"]
        assert json.loads(server.client.invoke("bystander", b"{}"))["code"] == "original"
    finally:
        server.stop()


def test_no_network_means_loopback_only(server, make_function):
    server.deploy(make_function("hostile", HOSTILE, network="none"))
    error = _refused(server, "connect", host="127.0.0.1", port=server.port)
    assert "refused" in error.lower()
    assert "unreachable" in _refused(server, "connect", host="192.0.2.1", port=80).lower()


def test_a_function_asking_for_an_unknown_network_is_refused(server, make_function):
    cli = server.cli("deploy", str(make_function("f", VICTIM, network="platfrom")))
    assert cli.returncode == 2 and "function.network" in cli.stderr


def _bomb(declared: int) -> bytes:
    spec = b'[function]\nname = "bomb"\nhandler = "app:handler"\n'
    head = tarfile.TarInfo("mlambda.toml")
    head.size = len(spec)
    zeros = tarfile.TarInfo("zeros.bin")
    zeros.size = declared
    raw = io.BytesIO()
    raw.write(head.tobuf() + spec + b"\0" * (-len(spec) % 512) + zeros.tobuf())
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as gz:
        gz.write(raw.getvalue())
        for _ in range(8):  # 8 MiB of the zeros, then the archive just stops
            gz.write(b"\0" * (1 << 20))
    return out.getvalue()


def test_a_bundle_bomb_is_refused_and_a_deploy_never_delays_an_invoke(neighbours, tmp_path):
    server, _ = neighbours
    bomb = _bomb(2 * 1024**3)
    response = server.http("PUT", "/v1/functions/bomb", content=bomb)
    assert response.status_code == 400 and "decompression bomb" in response.json()["errorMessage"]

    big = tmp_path / "big"
    big.mkdir()
    (big / "mlambda.toml").write_text('[function]\nname = "big"\nhandler = "app:handler"\n')
    (big / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (big / "weights.bin").write_bytes(os.urandom(96 * 1024 * 1024))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        deploying = pool.submit(server.deploy, big)
        latencies = []
        while not deploying.done():
            started = time.monotonic()
            assert json.loads(server.client.invoke("victim", b"{}"))["code"] == "original"
            latencies.append(time.monotonic() - started)
        assert deploying.result()["changed"] is True
    assert latencies and max(latencies) < 1.0, latencies
    assert server.http("GET", "/v1/functions/bomb").status_code == 404


def test_platform_network_reaches_the_gateway_and_nothing_else(server, make_function):
    caller = """
        import json, os, socket, urllib.request

        def handler(event, context):
            url = os.environ["MLAMBDA_URL"]
            request = urllib.request.Request(url + "/healthz")
            health = json.load(urllib.request.urlopen(request, timeout=5))
            try:
                urllib.request.urlopen(url + "/v1/functions", timeout=5)
                listing = "allowed"
            except urllib.error.HTTPError as exc:
                listing = exc.code
            try:
                socket.create_connection(("192.0.2.1", 80), timeout=2).close()
                outside = "connected"
            except OSError as exc:
                outside = str(exc)
            return {"health": health["status"], "listing": listing, "outside": outside,
                    "url": url}
    """
    server.deploy(make_function("caller", caller, network="platform"))
    outcome = json.loads(server.client.invoke("caller", b"{}"))
    assert outcome["url"] == f"http://127.0.0.1:{server.port}"
    assert outcome["health"] == "ok"
    assert outcome["listing"] == 401  # the gateway still wants a key
    assert "unreachable" in outcome["outside"].lower()
