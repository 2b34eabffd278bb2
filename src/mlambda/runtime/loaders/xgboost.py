"""XGBoost: a Booster saved with ``save_model`` as JSON (``.json``) or UBJSON (``.ubj``).

Input: one FP32 tensor ``input`` of shape [-1, num_features]. Output: ``predict``, what
``Booster.inplace_predict`` gives (probabilities for a classifier's objective).
"""

from __future__ import annotations

import numpy as np

from mlambda.runtime.protocol import ModelConfig
from mlambda.runtime.tensors import TensorSpec


def load(path: str, config: ModelConfig) -> XGBoostModel:
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(path)
    booster.set_param({"nthread": config.threads})
    return XGBoostModel(booster)


class XGBoostModel:
    def __init__(self, booster: object) -> None:
        self.booster = booster
        features = int(booster.num_features())  # type: ignore[attr-defined]
        self.inputs = [TensorSpec("input", "FP32", (-1, features))]
        self.outputs = [TensorSpec("predict", "FP32", ())]
        self.default_outputs = ["predict"]
        self.proba_output: str | None = None

    def predict(self, inputs: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        result = self.booster.inplace_predict(inputs["input"])  # type: ignore[attr-defined]
        return {"predict": np.asarray(result, dtype=np.float32)}
