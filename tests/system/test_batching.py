"""[function.batch]: requests that queue are merged into one call; each caller gets its own
answer, a poisoned request fails alone, and a lone request is not held back."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tests.models import build

BATCH_HANDLER = """
    import time

    def handler(events, context):
        time.sleep(0.05)
        results = []
        for event in events:
            if event.get("i") == 13:
                results.append(ValueError("thirteen is poisoned"))
            else:
                results.append({"i": event["i"], "doubled": event["i"] * 2, "size": len(events)})
        return results
"""


def _batch_config(directory, max_size: int, max_wait_ms: int = 0) -> None:
    spec = directory / "mlambda.toml"
    spec.write_text(
        spec.read_text() + f"[function.batch]\nmax_size = {max_size}\nmax_wait_ms = {max_wait_ms}\n"
    )


def test_concurrent_callers_each_get_their_own_result_and_a_poisoned_event_fails_alone(
    server, make_function
):
    directory = make_function("doubler", BATCH_HANDLER, max_instances=1, timeout_s=10)
    _batch_config(directory, max_size=8)
    server.deploy(directory)
    server.client.invoke("doubler", b'{"i": 0}')  # warm: the instance exists

    def call(i: int):  # type: ignore[no-untyped-def]
        return i, server.http("POST", "/v1/functions/doubler/invoke", json={"i": i})

    with ThreadPoolExecutor(24) as pool:
        answers = dict(pool.map(call, range(1, 25)))
    sizes = []
    for i, response in answers.items():
        if i == 13:
            assert response.status_code == 502
            assert response.json()["errorType"] == "ValueError"
            assert response.json()["errorMessage"] == "thirteen is poisoned"
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["i"], body["doubled"]) == (i, 2 * i)
        sizes.append(body["size"])
    assert max(sizes) > 1, "requests that queued were not merged"
    assert max(sizes) <= 8
    logs = "".join(server.client.logs("doubler", tail=400))
    assert re.search(r"Batch Size: [2-8]\t", logs)
    assert "Queue Wait: " in logs


def test_a_lone_request_is_not_delayed_unless_max_wait_ms_asks(server, make_function):
    code = "def handler(events, context):\n    return [len(events) for _ in events]\n"
    eager = make_function("eager", code)
    _batch_config(eager, max_size=8, max_wait_ms=0)
    patient = make_function("patient", code)
    _batch_config(patient, max_size=8, max_wait_ms=300)
    server.deploy(eager)
    server.deploy(patient)
    for name in ("eager", "patient"):
        server.client.invoke(name, b"{}")  # warm

    started = time.perf_counter()
    assert json.loads(server.client.invoke("eager", b"{}")) == 1
    eager_s = time.perf_counter() - started
    started = time.perf_counter()
    assert json.loads(server.client.invoke("patient", b"{}")) == 1
    patient_s = time.perf_counter() - started
    assert patient_s >= 0.3
    assert eager_s < 0.2, eager_s
    waits = re.findall(r"Queue Wait: ([\d.]+) ms", "".join(server.client.logs("eager")))
    assert float(waits[-1]) < 50


def test_a_batch_handler_that_miscounts_fails_every_event_with_a_clear_error(server, make_function):
    directory = make_function("short", "def handler(events, context):\n    return []\n")
    _batch_config(directory, max_size=4)
    server.deploy(directory)
    response = server.http("POST", "/v1/functions/short/invoke", json={})
    assert response.status_code == 502
    assert response.json()["errorType"] == "Runtime.BatchError"
    assert "returned 0 results for 1 events" in response.json()["errorMessage"]


def test_a_model_batches_rows_from_many_callers_and_answers_each_its_own(server, tmp_path):
    path, _, _ = build.onnx_mlp(tmp_path, hidden=256)
    directory = tmp_path / "batched"
    directory.mkdir()
    (directory / path.name).write_bytes(path.read_bytes())
    (directory / "mlambda.toml").write_text(
        f'[function]\nname = "batched"\nmodel = "{path.name}"\nmax_instances = 1\n'
        "[function.batch]\nmax_size = 16\nmax_wait_ms = 20\n"
    )
    server.deploy(directory)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    requests = [rng.standard_normal((1 + i % 3, 4)).astype(np.float32) for i in range(30)]

    def call(i: int):  # type: ignore[no-untyped-def]
        rows = requests[i].tolist() if i != 7 else [[1.0, 2.0]]  # 7 is the wrong shape
        return i, server.http("POST", "/v1/functions/batched/invoke", json={"inputs": rows})

    with ThreadPoolExecutor(30) as pool:
        answers = dict(pool.map(call, range(30)))
    for i, response in answers.items():
        if i == 7:
            assert response.status_code == 400
            assert "expected shape [-1, 4]" in response.json()["errorMessage"]
            continue
        assert response.status_code == 200, response.text
        expected = session.run(None, {"input": requests[i]})[0]
        np.testing.assert_allclose(response.json()["outputs"], expected, rtol=1e-5, atol=1e-6)
    logs = "".join(server.client.logs("batched", tail=400))
    sizes = [int(s) for s in re.findall(r"Batch Size: (\d+)", logs)]
    assert max(sizes) > 1


def test_max_bytes_bounds_a_batch_and_a_larger_request_still_goes_alone(server, make_function):
    code = (
        "import time\n"
        "def handler(events, context):\n"
        "    time.sleep(0.05)\n"
        "    return [len(events) for _ in events]\n"
    )
    directory = make_function("bounded", code, max_instances=1)
    spec = directory / "mlambda.toml"
    spec.write_text(spec.read_text() + "[function.batch]\nmax_size = 8\nmax_bytes = 40\n")
    server.deploy(directory)
    server.client.invoke("bounded", b"{}")
    payload = {"pad": "x" * 10}  # 17 bytes: two fit in 40, three do not

    def call(_: int) -> int:
        response = server.http("POST", "/v1/functions/bounded/invoke", json=payload)
        assert response.status_code == 200, response.text
        return int(response.json())

    with ThreadPoolExecutor(10) as pool:
        sizes = list(pool.map(call, range(10)))
    assert max(sizes) == 2
    big = server.http("POST", "/v1/functions/bounded/invoke", json={"pad": "y" * 100})
    assert big.status_code == 200 and big.json() == 1
