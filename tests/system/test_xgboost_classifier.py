"""XGBoost classifiers through the real platform: a model saved from ``XGBClassifier`` answers
the wrapper's labels, its probabilities with ``?proba=1``, and says which is which over the
Open Inference Protocol; a raw Booster answers what it always did."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.models import build
from tests.system.conftest import Server
from tests.system.test_models import predict


@pytest.fixture(scope="module")
def xgboost_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("xgboost") / "data", "--backend", "zygote").start()
    yield running
    running.stop()


def _infer(server: Server, name: str, batch: np.ndarray, *outputs: str) -> dict[str, Any]:
    """An OIP v2 request (JSON tensors) naming ``outputs``; the answer's tensors by name."""
    body: dict[str, Any] = {
        "inputs": [
            {
                "name": "input",
                "shape": list(batch.shape),
                "datatype": "FP32",
                "data": batch.ravel().tolist(),
            }
        ]
    }
    if outputs:
        body["outputs"] = [{"name": output} for output in outputs]
    response = server.http("POST", f"/v2/models/{name}/infer", json=body)
    assert response.status_code == 200, response.text
    return {tensor["name"]: tensor for tensor in response.json()["outputs"]}


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
@pytest.mark.parametrize("classes", [2, 3])
def test_a_saved_xgbclassifier_answers_the_wrappers_labels_and_probabilities(
    xgboost_server, tmp_path, classes, suffix
):
    path, batch, (labels, proba) = build.xgboost_classifier(tmp_path, suffix, classes=classes)
    name = f"classifier_{classes}_{suffix[1:]}"
    xgboost_server.deploy_path(path, name=name)

    assert predict(xgboost_server, name, batch.tolist()) == labels.tolist()
    np.testing.assert_allclose(predict(xgboost_server, name, batch.tolist(), "?proba=1"), proba)

    metadata = xgboost_server.http("GET", f"/v2/models/{name}").json()
    assert metadata["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP32", "shape": [-1, classes]},
    ]
    tensors = _infer(xgboost_server, name, batch, "predict_proba", "predict")
    assert list(tensors) == ["predict_proba", "predict"]
    assert tensors["predict"]["datatype"] == "INT64"
    assert tensors["predict"]["data"] == labels.tolist()
    assert tensors["predict_proba"]["shape"] == [len(batch), classes]
    np.testing.assert_allclose(np.reshape(tensors["predict_proba"]["data"], proba.shape), proba)


def test_a_classifier_that_carries_its_labels_answers_them(xgboost_server, tmp_path):
    names = ["bronze", "silver", "gold"]
    path, batch, (labels, proba) = build.xgboost_classifier(tmp_path, classes=3, labels=names)
    xgboost_server.deploy_path(path, name="tiers")

    assert predict(xgboost_server, "tiers", batch.tolist()) == labels.tolist()
    np.testing.assert_allclose(predict(xgboost_server, "tiers", batch.tolist(), "?proba=1"), proba)
    metadata = xgboost_server.http("GET", "/v2/models/tiers").json()
    assert metadata["outputs"][0] == {"name": "predict", "datatype": "BYTES", "shape": [-1]}
    tensors = _infer(xgboost_server, "tiers", batch)  # no outputs named: both come back
    assert tensors["predict"]["datatype"] == "BYTES"
    assert tensors["predict"]["data"] == labels.tolist()
    assert tensors["predict_proba"]["datatype"] == "FP32"


def test_a_raw_booster_still_answers_what_inplace_predict_gives(xgboost_server, tmp_path):
    path, batch, expected = build.xgboost_model(tmp_path, ".ubj")
    xgboost_server.deploy_path(path, name="raw")

    np.testing.assert_allclose(predict(xgboost_server, "raw", batch.tolist()), expected, rtol=1e-6)
    metadata = xgboost_server.http("GET", "/v2/models/raw").json()
    assert metadata["outputs"] == [{"name": "predict", "datatype": "FP32", "shape": []}]
    response = xgboost_server.http(
        "POST", "/v1/functions/raw/invoke?proba=1", json={"inputs": batch.tolist()}
    )
    assert response.status_code == 400
    assert "no predict_proba" in response.json()["errorMessage"]


if sys.platform != "linux":  # pragma: no cover
    pytest.skip("zygotes need Linux", allow_module_level=True)
