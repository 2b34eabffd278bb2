"""scikit-learn: skops files by default; joblib/pickle only with ``trust_pickle = true``.

Input: one FP64 tensor ``input`` of shape [-1, n_features_in_]. Outputs: ``predict``, and
``predict_proba`` for estimators that have it (asked for with ``?proba=1``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlambda.runtime.loaders import PICKLE_SUFFIXES
from mlambda.runtime.protocol import ModelConfig
from mlambda.runtime.tensors import TensorSpec

# Modules whose types a skops file may hold without being trusted one by one: the estimators,
# numpy and scipy. Anything else (user classes, or a function such as builtins.exec stored in
# a FunctionTransformer) makes loading fail with the type's name.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")


class UntrustedPickle(Exception):
    pass


def load(path: str, config: ModelConfig) -> SklearnModel:
    if path.lower().endswith(PICKLE_SUFFIXES):
        if not config.trust_pickle:
            raise UntrustedPickle(
                f"refusing to unpickle {config.path!r}: set trust_pickle = true only for files "
                "you made yourself, or save the model with skops"
            )
        import joblib

        estimator = joblib.load(path)
    else:
        import skops.io

        untrusted = skops.io.get_untrusted_types(file=path)
        unknown = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
        if unknown:
            raise UntrustedPickle(
                f"{config.path!r} holds types outside scikit-learn, numpy and scipy: "
                f"{', '.join(unknown)}"
            )
        estimator = skops.io.load(path, trusted=untrusted)
    return SklearnModel(estimator)


class SklearnModel:
    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        features = getattr(estimator, "n_features_in_", None)
        shape = (-1, int(features)) if features is not None else (-1, -1)
        self.inputs = [TensorSpec("input", "FP64", shape)]
        self.outputs = [TensorSpec("predict", _predict_datatype(estimator), (-1,))]
        self.proba_output: str | None = None
        if hasattr(estimator, "predict_proba"):
            classes = len(getattr(estimator, "classes_", [])) or -1
            self.outputs.append(TensorSpec("predict_proba", "FP64", (-1, classes)))
            self.proba_output = "predict_proba"
        self.default_outputs = ["predict"]

    def predict(self, inputs: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        features = inputs["input"]
        out: dict[str, np.ndarray] = {}
        for name in wanted:
            out[name] = np.asarray(getattr(self.estimator, name)(features))
        return out


def _predict_datatype(estimator: Any) -> str:
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return "FP64"
    kind = np.asarray(classes).dtype.kind
    return {"i": "INT64", "u": "INT64", "b": "BOOL", "f": "FP64"}.get(kind, "BYTES")
