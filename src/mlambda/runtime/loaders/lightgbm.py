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

    return LightGBMModel(lightgbm.Booster(model_file=path), config.threads)


class LightGBMModel:
    def __init__(self, booster: object, threads: int) -> None:
        self.booster = booster
        self.threads = threads
        features = int(booster.num_feature())  # type: ignore[attr-defined]
        self.inputs = [TensorSpec("input", "FP64", (-1, features))]
        self.outputs = [TensorSpec("predict", "FP64", ())]
        self.default_outputs = ["predict"]
        self.proba_output: str | None = None

    def set_threads(self, threads: int) -> None:
        """In an instance forked from the template that loaded it with one thread."""
        self.threads = threads

    def predict(self, inputs: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        # Threads as the platform sized this instance (pool/threads.py).
        result = self.booster.predict(  # type: ignore[attr-defined]
            inputs["input"], num_threads=self.threads
        )
        return {"predict": np.asarray(result, dtype=np.float64)}
