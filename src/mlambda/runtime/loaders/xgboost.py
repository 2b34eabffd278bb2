"""XGBoost: a Booster saved with ``save_model`` as JSON (``.json``) or UBJSON (``.ubj``).

Input: one FP32 tensor ``input`` of shape [-1, num_features].

A model saved from ``XGBClassifier`` (its booster's ``scikit_learn`` attribute says it is a
classifier) answers as the wrapper does: ``predict``, the labels ``XGBClassifier.predict``
gives, the original classes where the model carries them (xgboost < 2 stored ``classes_``);
``predict_proba``, what ``XGBClassifier.predict_proba`` gives, asked for with ``?proba=1``.
Any other model (a raw Booster, a regressor or ranker from the wrapper) answers ``predict``,
what ``Booster.inplace_predict`` gives (probabilities for a classifier's objective).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from mlambda.runtime.protocol import ModelConfig
from mlambda.runtime.tensors import TensorSpec, datatype_of

# Saved by the scikit-learn wrapper, from xgboost 1.0 to today: ``type`` (the class name) in
# the first releases, ``_estimator_type`` since.
_CLASSIFIER_TYPES = ("XGBClassifier", "XGBRFClassifier")


@dataclasses.dataclass(frozen=True)
class Classifier:
    """What the wrapper's ``predict`` and ``predict_proba`` depend on, read from the model."""

    objective: str
    # 2 for a binary model (whose booster says 0 classes).
    n_classes: int
    # Above 1 for a multi-label model: one 0/1 label and one probability per target.
    targets: int
    # The original labels, index by index; None when they are 0..n_classes-1.
    classes: tuple[Any, ...] | None
    # The trees the wrapper predicts with: up to the best iteration of early stopping.
    iteration_range: tuple[int, int]

    @property
    def columns(self) -> int:
        """The columns of ``predict_proba`` (and of ``predict`` for a multi-label model)."""
        return self.targets if self.targets > 1 else self.n_classes


def classifier_of(
    meta: str | None, learner: dict[str, Any], best_iteration: str | None
) -> Classifier | None:
    """The classifier a saved model is, or None for a raw Booster, a regressor or a ranker.

    ``meta`` is the booster's ``scikit_learn`` attribute, ``learner`` the ``learner`` of its
    ``save_config()``, ``best_iteration`` its ``best_iteration`` attribute."""
    try:
        saved = json.loads(meta) if meta else {}
    except ValueError:
        return None  # not the wrapper's: served as a raw Booster
    if not isinstance(saved, dict) or not _is_classifier(saved):
        return None
    params = learner["learner_model_param"]
    n_classes = max(int(params.get("num_class", 0)), 2)
    targets = int(params.get("num_target", 1))
    last = int(best_iteration) + 1 if best_iteration is not None else 0
    if learner["gradient_booster"]["name"] == "gblinear":
        last = 0  # the wrapper predicts with every round of a linear booster
    return Classifier(
        objective=learner["objective"]["name"],
        n_classes=n_classes,
        targets=targets,
        classes=_saved_classes(saved, n_classes) if targets == 1 else None,
        iteration_range=(0, last),
    )


def _is_classifier(saved: dict[str, Any]) -> bool:
    return saved.get("_estimator_type") == "classifier" or saved.get("type") in _CLASSIFIER_TYPES


def _saved_classes(saved: dict[str, Any], n_classes: int) -> tuple[Any, ...] | None:
    # xgboost < 2 kept its label encoder's classes under `_le` and the wrapper's under
    # `classes_`; predict mapped indices through the encoder.
    encoder = saved.get("_le")
    classes = encoder.get("classes_") if isinstance(encoder, dict) else None
    if classes is None:
        classes = saved.get("classes_")
    if not isinstance(classes, list) or len(classes) != n_classes:
        return None
    if not all(isinstance(c, str | int | float) for c in classes):
        return None
    return tuple(classes)


def class_indices(prediction: np.ndarray, objective: str, n_classes: int) -> np.ndarray:
    """The class index of each row, picked from the booster's output as the wrapper does."""
    if prediction.ndim > 1 and n_classes != 2:
        return np.argmax(prediction, axis=1).astype(np.int64)
    if prediction.ndim > 1 and prediction.shape[1] != 1:
        return (prediction > 0.5).astype(np.int64)  # multi-label: one 0/1 per target
    if objective == "multi:softmax":
        return prediction.reshape(-1).astype(np.int64)  # the index already
    return (prediction.reshape(-1) > 0.5).astype(np.int64)


def proba_predict_type(objective: str) -> str:
    """What to ask the booster for ``predict_proba``: softmax's output is a class index, so
    its probabilities come from the margin."""
    return "margin" if objective == "multi:softmax" else "value"


def probabilities(prediction: np.ndarray, objective: str, n_classes: int) -> np.ndarray:
    """``predict_proba`` from the booster's output (of ``proba_predict_type``)."""
    if objective == "multi:softmax":
        exponents = np.exp(prediction - prediction.max(axis=1, keepdims=True))
        return exponents / exponents.sum(axis=1, keepdims=True)
    if prediction.ndim == 2 and prediction.shape[1] == n_classes:
        return prediction
    if prediction.ndim == 2 and n_classes == 2 and prediction.shape[1] > 2:
        return prediction  # multi-label: one probability per target
    positive = prediction.reshape(-1)
    return np.stack([1.0 - positive, positive], axis=1)


def load(path: str, config: ModelConfig) -> XGBoostModel | XGBClassifierModel:
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(path)
    booster.set_param({"nthread": config.threads})
    learner = json.loads(booster.save_config())["learner"]
    classifier = classifier_of(
        booster.attr("scikit_learn"), learner, booster.attr("best_iteration")
    )
    if classifier is None:
        return XGBoostModel(booster)
    return XGBClassifierModel(booster, classifier)


def _features(booster: Any) -> TensorSpec:
    return TensorSpec("input", "FP32", (-1, int(booster.num_features())))


class XGBoostModel:
    """A raw Booster (or a regressor or ranker from the wrapper): what it predicts."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        self.inputs = [_features(booster)]
        self.outputs = [TensorSpec("predict", "FP32", ())]
        self.default_outputs = ["predict"]
        self.proba_output: str | None = None

    def predict(self, inputs: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        result = self.booster.inplace_predict(inputs["input"])
        return {"predict": np.asarray(result, dtype=np.float32)}

    def set_threads(self, threads: int) -> None:
        """In an instance forked from the template that loaded it with one thread."""
        self.booster.set_param({"nthread": threads})


class XGBClassifierModel:
    """A model saved from ``XGBClassifier``: labels, and probabilities on request."""

    def __init__(self, booster: Any, classifier: Classifier) -> None:
        self.booster = booster
        self.classifier = classifier
        self.classes = None if classifier.classes is None else np.asarray(classifier.classes)
        labels = "INT64" if self.classes is None else datatype_of(self.classes)
        shape = (-1,) if classifier.targets == 1 else (-1, classifier.targets)
        self.inputs = [_features(booster)]
        self.outputs = [
            TensorSpec("predict", labels, shape),
            TensorSpec("predict_proba", "FP32", (-1, classifier.columns)),
        ]
        self.default_outputs = ["predict"]
        self.proba_output: str | None = "predict_proba"

    def set_threads(self, threads: int) -> None:
        """In an instance forked from the template that loaded it with one thread."""
        self.booster.set_param({"nthread": threads})

    def predict(self, inputs: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        features = inputs["input"]
        classifier = self.classifier
        runs: dict[str, np.ndarray] = {}

        def run(predict_type: str) -> np.ndarray:
            if predict_type not in runs:
                runs[predict_type] = np.asarray(
                    self.booster.inplace_predict(
                        features,
                        predict_type=predict_type,
                        iteration_range=classifier.iteration_range,
                    )
                )
            return runs[predict_type]

        out: dict[str, np.ndarray] = {}
        if "predict" in wanted:
            out["predict"] = self._labels(run("value"))
        if "predict_proba" in wanted:
            margin_or_value = run(proba_predict_type(classifier.objective))
            proba = probabilities(margin_or_value, classifier.objective, classifier.n_classes)
            out["predict_proba"] = np.asarray(proba, dtype=np.float32)
        return out

    def _labels(self, prediction: np.ndarray) -> np.ndarray:
        indices = class_indices(prediction, self.classifier.objective, self.classifier.n_classes)
        if self.classes is None or indices.ndim > 1:
            return indices
        return self.classes[indices]
