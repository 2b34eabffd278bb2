"""LightGBM: a Booster saved with ``save_model`` as its text format (``.txt``).

Input: one FP64 tensor ``input`` of shape [-1, num_feature]. Output: ``predict``, what
``Booster.predict`` gives (probabilities for binary and multiclass objectives).
"""

from __future__ import annotations

import numpy as np

from mlambda.runtime.protocol import ModelConfig
from mlambda.runtime.tensors import TensorSpec


def load(path: str, config: ModelConfig) -> LightGBMModel:
    import lightgbm

    return LightGBMModel(lightgbm.Booster(model_file=path))


class LightGBMModel:
    def __init__(self, booster: object) -> None:
        self.booster = booster
        features = int(booster.num_feature())  # type: ignore[attr-defined]
        self.inputs = [TensorSpec("input", "FP64", (-1, features))]
        self.outputs = [TensorSpec("predict", "FP64", ())]
        self.default_outputs = ["predict"]
        self.proba_output: str | None = None

    def predict(self, inputs: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        # One thread: the instance is the unit of parallelism (cpu sets OMP_NUM_THREADS).
        result = self.booster.predict(inputs["input"], num_threads=0)  # type: ignore[attr-defined]
        return {"predict": np.asarray(result, dtype=np.float64)}
