"""Instances' native thread pools: sized from `cpu`, the machine's cores and the live instances;
a spare of a runtime that builds after the fork (ONNX Runtime) is built before a call takes it."""

from __future__ import annotations

import concurrent.futures
import json

import numpy as np

from mlambda.pool.threads import machine_cores
from tests.models import build
from tests.system.conftest import Server
from tests.system.test_zygotes import _last_report, _spares, _wait_for

POOLS = """
    import os, threading

    def handler(event, context):
        if event.get("hold"):
            threading.Event().wait(event["hold"])
        import numpy  # loaded by the runtime zygote: its pools were sized after the fork
        from threadpoolctl import threadpool_info
        return {
            "omp": os.environ.get("OMP_NUM_THREADS"),
            "blas": sorted({p["num_threads"] for p in threadpool_info()}),
        }
"""


def test_a_lone_instance_uses_every_core_and_a_cpu_quota_caps_it(server, make_function):
    cores = machine_cores()
    server.deploy(make_function("wide", POOLS, preload=["numpy", "sklearn"]))
    server.deploy(make_function("narrow", POOLS, preload=["numpy", "sklearn"], cpu=1))
    wide = json.loads(server.client.invoke("wide", b"{}"))
    assert wide == {"omp": str(cores), "blas": [cores]}
    narrow = json.loads(server.client.invoke("narrow", b"{}"))
    assert narrow == {"omp": "1", "blas": [1]}


def test_omp_num_threads_in_the_functions_env_fixes_the_count(server, make_function):
    env = {"OMP_NUM_THREADS": "1"}
    server.deploy(make_function("pinned", POOLS, preload=["numpy", "sklearn"], env=env))
    assert json.loads(server.client.invoke("pinned", b"{}")) == {"omp": "1", "blas": [1]}


def test_an_instance_started_beside_a_busy_one_takes_a_share_of_the_cores(server, make_function):
    cores = machine_cores()
    server.deploy(make_function("shared", POOLS, preload=["numpy", "sklearn"]))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        # The second call is sent once the first one's instance is up and busy (two sent at
        # once from zero start two instances together, each beside the other: a share each).
        calls = [pool.submit(server.client.invoke, "shared", b'{"hold": 2.0}')]
        assert _wait_for(lambda: _instances(server, "shared") == 1, within=10)
        calls.append(pool.submit(server.client.invoke, "shared", b'{"hold": 0.5}'))
        replies = [json.loads(call.result()) for call in calls]
    assert sorted(int(r["omp"]) for r in replies) == [max(1, cores // 2), cores]
    rows = [r for r in server.client.processes() if r["function"] == "shared"]
    instances = sorted(r["threads"] for r in rows if r["kind"] == "instance")
    assert instances == [max(1, cores // 2), cores]
    # Per call too: the call sent while the other was busy ran on a share (the first one sent
    # may have seen the other busy as well, when both were handed out at once).
    assert min(r["blas"] for r in replies) == [max(1, cores // 2)]
    # Pools that can be resized follow the load per call: alone again, a call gets every core,
    # whichever instance takes it.
    for _ in range(3):
        assert json.loads(server.client.invoke("shared", b"{}"))["blas"] == [cores]


def _instances(server: Server, function: str) -> int:
    rows = server.client.processes()
    return sum(1 for r in rows if r["function"] == function and r["kind"] == "instance")


def _onnx_server(tmp_path, *flags: str) -> tuple[Server, np.ndarray, np.ndarray]:
    path, batch, expected = build.onnx_mlp(tmp_path)
    server = Server(tmp_path / "data", "--backend", "zygote", *flags).start()
    server.deploy_path(path, name="mlp")
    return server, batch, expected


def _predict(server: Server, batch: np.ndarray) -> np.ndarray:
    reply = json.loads(server.client.invoke("mlp", json.dumps({"inputs": batch.tolist()})))
    return np.asarray(reply["outputs"])


def _init_ms(report: str) -> float:
    return float(report.split(", init ")[1].split(" ms")[0])


def test_a_spare_builds_its_onnx_session_before_the_call_that_takes_it(tmp_path):
    server, batch, expected = _onnx_server(tmp_path)
    try:
        assert _wait_for(lambda: "mlp" in _spares(server), within=60)
        spare = next(r for r in server.client.processes() if r["kind"] == "spare")
        assert spare["threads"] == machine_cores()  # sized for a call from zero
        # Its session is built as soon as it is forked; give that time before the first call.
        _wait_for(lambda: False, within=2.0)
        np.testing.assert_allclose(_predict(server, batch), expected, rtol=1e-5)
        report = _last_report(server, "mlp")
        assert "tier template" in report and _init_ms(report) == 0.0  # nothing built on the call
        assert (
            next(r for r in server.client.processes() if r["kind"] == "instance")["pid"]
            == (spare["pid"])
        )
    finally:
        server.stop()


def test_without_spares_the_first_call_builds_the_session(tmp_path):
    server, batch, expected = _onnx_server(tmp_path, "--no-prefork-spare")
    try:
        np.testing.assert_allclose(_predict(server, batch), expected, rtol=1e-5)
        assert _init_ms(_last_report(server, "mlp")) > 0.0  # the session was built on its path
    finally:
        server.stop()
