"""The Open Inference Protocol v2 with the real `tritonclient` (HTTP), unchanged: JSON tensors
and the binary tensor data extension it uses by default."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.models import build
from tests.system.conftest import Server

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def oip_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("oip") / "data", "--backend", "zygote").start()
    yield running
    running.stop()


@pytest.fixture
def triton(oip_server: Server) -> Iterator[object]:
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{oip_server.port}")
    yield client
    client.close()


def auth(server: Server) -> dict[str, str]:
    # A new dict per call: tritonclient adds Inference-Header-Content-Length to the one given.
    return {"Authorization": f"Bearer {server.key}"}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_round_trip_matches_onnxruntime(oip_server, triton, tmp_path, binary):
    path, batch, expected = build.onnx_mlp(tmp_path)
    oip_server.deploy_path(path, name=f"mlp_{binary}")
    name = f"mlp_{binary}"

    assert triton.is_server_live()  # health needs no key
    assert triton.is_server_ready()
    assert triton.is_model_ready(name, headers=auth(oip_server))
    metadata = triton.get_model_metadata(name, headers=auth(oip_server))
    assert metadata["name"] == name
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]

    tensor = httpclient.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    wanted = httpclient.InferRequestedOutput("probabilities", binary_data=binary)
    result = triton.infer(
        name, [tensor], outputs=[wanted], headers=auth(oip_server), request_id="r-1"
    )
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5)
    assert result.get_response()["id"] == "r-1"
    assert result.get_response()["model_name"] == name

    # No outputs named: every output comes back.
    result = triton.infer(name, [tensor], headers=auth(oip_server))
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5)


def test_bytes_tensors_reach_a_sentence_transformer(oip_server, triton):
    from tests.system.test_models import TEXTS, minilm_directory

    oip_server.deploy_path(minilm_directory(), name="minilm")
    metadata = triton.get_model_metadata("minilm", headers=auth(oip_server))
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert metadata["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, 384]}]
    texts = np.array([t.encode() for t in TEXTS], dtype=np.object_)
    for binary in (True, False):
        tensor = httpclient.InferInput("text", [len(TEXTS)], "BYTES")
        tensor.set_data_from_numpy(texts, binary_data=binary)
        result = triton.infer("minilm", [tensor], headers=auth(oip_server))
        embeddings = result.as_numpy("embedding")
        assert embeddings.shape == (3, 384)
        # The same text through the native API gives the same embedding.
        native = oip_server.http(
            "POST", "/v1/functions/minilm/invoke", json={"inputs": TEXTS[:1]}
        ).json()["outputs"]
        np.testing.assert_allclose(embeddings[0], native[0], rtol=1e-4, atol=1e-5)


def test_protocol_errors_reach_tritonclient_as_its_exception(oip_server, triton, tmp_path):
    path, batch, _ = build.onnx_mlp(tmp_path)
    oip_server.deploy_path(path, name="picky")
    tensor = httpclient.InferInput("input", list(batch.shape), "FP64")
    tensor.set_data_from_numpy(batch.astype(np.float64))
    with pytest.raises(InferenceServerException, match="datatype 'FP64' does not match"):
        triton.infer("picky", [tensor], headers=auth(oip_server))
    wrong = httpclient.InferInput("input", [5, 3], "FP32")
    wrong.set_data_from_numpy(batch[:, :3].copy())
    with pytest.raises(InferenceServerException, match=r"expected shape \[-1, 4\]"):
        triton.infer("picky", [wrong], headers=auth(oip_server))
    with pytest.raises(InferenceServerException, match="not found"):
        triton.get_model_metadata("nope", headers=auth(oip_server))
    assert not triton.is_model_ready("picky")  # no key: refused
    assert not triton.is_model_ready("nope", headers=auth(oip_server))


def test_a_model_at_zero_instances_is_ready(oip_server, tmp_path):
    path, _, _ = build.lightgbm_model(tmp_path)
    oip_server.deploy_path(path, name="idle")
    response = oip_server.http("GET", "/v2/models/idle/ready")
    assert response.status_code == 200
    assert response.json() == {"name": "idle", "ready": True}
    rows = oip_server.http("GET", "/v1/instances").json()["processes"]
    assert not [r for r in rows if r["kind"] == "instance" and r["function"] == "idle"]


def test_a_handler_function_is_not_served_over_the_protocol(oip_server, make_function):
    oip_server.deploy(make_function("plain", "def handler(event, context):\n    return 1\n"))
    response = oip_server.http("POST", "/v2/models/plain/infer", json={"inputs": []})
    assert response.status_code == 400
    assert "not a model" in response.json()["error"]


def test_a_version_in_the_path_must_be_the_function_version(oip_server, tmp_path):
    path, batch, expected = build.onnx_mlp(tmp_path)
    oip_server.deploy_path(path, name="versioned")
    body = {
        "inputs": [
            {
                "name": "input",
                "shape": list(batch.shape),
                "datatype": "FP32",
                "data": batch.ravel().tolist(),
            }
        ]
    }
    ok = oip_server.http("POST", "/v2/models/versioned/versions/$LATEST/infer", json=body)
    assert ok.status_code == 200, ok.text
    output = ok.json()["outputs"][0]
    assert output["shape"] == [5, 3]
    np.testing.assert_allclose(np.reshape(output["data"], (5, 3)), expected, rtol=1e-5)
    missing = oip_server.http("POST", "/v2/models/versioned/versions/7/infer", json=body)
    assert missing.status_code == 404
    assert "no version '7'" in missing.json()["error"]


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_a_compressed_request_is_inflated(oip_server, triton, tmp_path, algorithm):
    path, batch, expected = build.onnx_mlp(tmp_path)
    oip_server.deploy_path(path, name=f"zipped_{algorithm}")
    tensor = httpclient.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)
    result = triton.infer(
        f"zipped_{algorithm}",
        [tensor],
        headers=auth(oip_server),
        request_compression_algorithm=algorithm,
    )
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5)
    garbage = oip_server.http(
        "POST",
        f"/v2/models/zipped_{algorithm}/infer",
        content=b"not compressed",
        headers={"Content-Encoding": algorithm},
    )
    assert garbage.status_code == 400
    assert f"not valid {algorithm} data" in garbage.json()["error"]
