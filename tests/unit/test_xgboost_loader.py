"""The XGBoost loader: a model saved from ``XGBClassifier`` answers what the wrapper's
``predict`` and ``predict_proba`` give; a raw Booster answers ``inplace_predict``.

The decisions (is it a classifier, which labels, which probabilities) are tables; the models
compared with the wrapper are trained here, a few trees each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlambda.runtime import protocol
from mlambda.runtime.loaders import xgboost as loader
from mlambda.runtime.loaders.xgboost import Classifier
from mlambda.runtime.model import ModelHandler
from mlambda.runtime.tensors import TensorSpec


def _learner(
    num_class: str = "0",
    objective: str = "binary:logistic",
    booster: str = "gbtree",
    num_target: str = "1",
) -> dict[str, Any]:
    """The part of ``Booster.save_config()`` the loader reads."""
    return {
        "learner_model_param": {"num_class": num_class, "num_target": num_target},
        "objective": {"name": objective},
        "gradient_booster": {"name": booster},
    }


CLASSIFIER = json.dumps({"_estimator_type": "classifier"})
BINARY = Classifier("binary:logistic", 2, 1, None, (0, 0))


@pytest.mark.parametrize(
    ("meta", "learner", "best", "expected"),
    [
        (None, _learner(), None, None),
        ('{"_estimator_type": "regressor"}', _learner(), None, None),
        ('{"_estimator_type": "ranker"}', _learner(), None, None),
        ("not json", _learner(), None, None),
        ('["classifier"]', _learner(), None, None),
        (CLASSIFIER, _learner(), None, BINARY),
        (
            CLASSIFIER,
            _learner("3", "multi:softprob"),
            None,
            Classifier("multi:softprob", 3, 1, None, (0, 0)),
        ),
        (
            CLASSIFIER,
            _learner("3", "multi:softmax"),
            None,
            Classifier("multi:softmax", 3, 1, None, (0, 0)),
        ),
        # Early stopping: the wrapper predicts with the trees up to the best iteration.
        (CLASSIFIER, _learner(), "12", Classifier("binary:logistic", 2, 1, None, (0, 13))),
        (CLASSIFIER, _learner(booster="gblinear"), "12", BINARY),
        # Multi-label: one 0/1 label per target.
        (
            CLASSIFIER,
            _learner(num_target="3"),
            None,
            Classifier("binary:logistic", 2, 3, None, (0, 0)),
        ),
        # What xgboost < 2 saved: the classes, and its label encoder's.
        (
            '{"_estimator_type": "classifier", "classes_": [10, 20]}',
            _learner(),
            None,
            Classifier("binary:logistic", 2, 1, (10, 20), (0, 0)),
        ),
        (
            json.dumps(
                {
                    "_estimator_type": "classifier",
                    "classes_": ["cat", "dog", "fish"],
                    "_le": {"classes_": ["cat", "dog", "fish"]},
                }
            ),
            _learner("3", "multi:softprob"),
            None,
            Classifier("multi:softprob", 3, 1, ("cat", "dog", "fish"), (0, 0)),
        ),
        (
            '{"type": "XGBClassifier", "classes_": [0, 1]}',
            _learner(),
            None,
            Classifier("binary:logistic", 2, 1, (0, 1), (0, 0)),
        ),
        # Classes that do not fit the model are not used: the labels are the indices.
        ('{"_estimator_type": "classifier", "classes_": ["a"]}', _learner(), None, BINARY),
        ('{"_estimator_type": "classifier", "classes_": [[1], [2]]}', _learner(), None, BINARY),
    ],
)
def test_a_classifier_is_told_from_what_the_wrapper_saved(meta, learner, best, expected):
    assert loader.classifier_of(meta, learner, best) == expected


@pytest.mark.parametrize(
    ("prediction", "objective", "n_classes", "expected"),
    [
        # binary:logistic: the positive class's probability, above 0.5 is class 1.
        ([0.2, 0.5, 0.7], "binary:logistic", 2, [0, 0, 1]),
        # multi:softprob: one probability per class, the largest wins (the first of a tie).
        ([[0.1, 0.7, 0.2], [0.4, 0.2, 0.4]], "multi:softprob", 3, [1, 0]),
        # multi:softmax: the booster gives the index itself.
        ([2.0, 0.0, 1.0], "multi:softmax", 3, [2, 0, 1]),
        # Multi-label: each target's probability on its own.
        ([[0.9, 0.1, 0.6]], "binary:logistic", 2, [[1, 0, 1]]),
    ],
)
def test_class_indices_follow_the_wrappers_predict(prediction, objective, n_classes, expected):
    indices = loader.class_indices(np.asarray(prediction, np.float32), objective, n_classes)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices, expected)


@pytest.mark.parametrize(
    ("prediction", "objective", "n_classes", "expected"),
    [
        ([0.25, 1.0], "binary:logistic", 2, [[0.75, 0.25], [0.0, 1.0]]),
        ([[0.1, 0.7, 0.2]], "multi:softprob", 3, [[0.1, 0.7, 0.2]]),
        # multi:softmax: probabilities are the softmax of the margin.
        ([[0.0, np.log(3.0)]], "multi:softmax", 2, [[0.25, 0.75]]),
        ([[0.9, 0.1, 0.6]], "binary:logistic", 2, [[0.9, 0.1, 0.6]]),
    ],
)
def test_probabilities_follow_the_wrappers_predict_proba(
    prediction, objective, n_classes, expected
):
    result = loader.probabilities(np.asarray(prediction, np.float32), objective, n_classes)
    np.testing.assert_allclose(result, expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("objective", "predict_type"),
    [("binary:logistic", "value"), ("multi:softprob", "value"), ("multi:softmax", "margin")],
)
def test_softmax_probabilities_come_from_the_margin(objective, predict_type):
    assert loader.proba_predict_type(objective) == predict_type


# -- models trained here ----------------------------------------------------------------------


def _dataset(kind: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris, make_classification

    if kind == "iris":
        return load_iris(return_X_y=True)
    x, y = make_classification(n_samples=120, n_features=5, n_informative=3, random_state=0)
    return x, y


def _load(path: Path) -> Any:
    return loader.load(str(path), protocol.ModelConfig(path=path.name, framework="xgboost"))


def _answer(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    return model.predict({"input": x.astype(np.float32)}, ["predict", "predict_proba"])


CASES = {
    "binary": ("binary", {}),
    "multi-softprob": ("iris", {}),
    "multi-softmax": ("iris", {"objective": "multi:softmax"}),
}


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_saved_xgbclassifier_answers_the_wrappers_labels_and_probabilities(
    tmp_path, case, suffix
):
    xgboost = pytest.importorskip("xgboost")
    kind, params = CASES[case]
    x, y = _dataset(kind)
    wrapper = xgboost.XGBClassifier(n_estimators=5, n_jobs=1, **params).fit(x, y)
    wrapper.save_model(tmp_path / f"model{suffix}")
    model = _load(tmp_path / f"model{suffix}")

    answer = _answer(model, x)
    np.testing.assert_array_equal(answer["predict"], wrapper.predict(x))
    assert answer["predict"].dtype == np.int64
    np.testing.assert_allclose(answer["predict_proba"], wrapper.predict_proba(x), rtol=1e-6)
    assert answer["predict_proba"].dtype == np.float32
    classes = len(wrapper.classes_)
    assert model.outputs == [
        TensorSpec("predict", "INT64", (-1,)),
        TensorSpec("predict_proba", "FP32", (-1, classes)),
    ]
    assert model.inputs == [TensorSpec("input", "FP32", (-1, x.shape[1]))]
    assert (model.default_outputs, model.proba_output) == (["predict"], "predict_proba")
    # Asked for one output, a model computes and returns that one only.
    alone = model.predict({"input": x[:3].astype(np.float32)}, ["predict_proba"])
    assert list(alone) == ["predict_proba"]


def test_an_early_stopped_classifier_predicts_with_its_best_iteration(tmp_path):
    xgboost = pytest.importorskip("xgboost")
    x, y = _dataset("binary")
    wrapper = xgboost.XGBClassifier(n_estimators=40, early_stopping_rounds=2, n_jobs=1)
    wrapper.fit(x[:80], y[:80], eval_set=[(x[80:], y[80:])], verbose=False)
    assert wrapper.best_iteration + 1 < wrapper.get_booster().num_boosted_rounds()
    wrapper.save_model(tmp_path / "stopped.json")
    answer = _answer(_load(tmp_path / "stopped.json"), x)
    np.testing.assert_allclose(answer["predict_proba"], wrapper.predict_proba(x), rtol=1e-6)
    np.testing.assert_array_equal(answer["predict"], wrapper.predict(x))


def test_a_multi_label_classifier_answers_one_label_per_target(tmp_path):
    xgboost = pytest.importorskip("xgboost")
    x, y = _dataset("binary")
    targets = np.stack([y, 1 - y, (x[:, 0] > 0).astype(int)], axis=1)
    wrapper = xgboost.XGBClassifier(n_estimators=5, tree_method="hist", n_jobs=1)
    wrapper.fit(x, targets)
    wrapper.save_model(tmp_path / "labels.json")
    model = _load(tmp_path / "labels.json")
    answer = _answer(model, x)
    np.testing.assert_array_equal(answer["predict"], wrapper.predict(x))
    np.testing.assert_allclose(answer["predict_proba"], wrapper.predict_proba(x), rtol=1e-6)
    assert model.outputs == [
        TensorSpec("predict", "INT64", (-1, 3)),
        TensorSpec("predict_proba", "FP32", (-1, 3)),
    ]


def _with_classes(wrapper: Any, path: Path, classes: list[Any]) -> None:
    """Save as xgboost < 2 did for a model fitted on ``classes``: they are in the metadata.

    Today's wrapper fits 0..n-1 only and saves no classes; setting the attribute on the
    booster and saving the booster stores them the same way."""
    meta = {"_estimator_type": "classifier", "classes_": classes}
    wrapper.get_booster().set_attr(scikit_learn=json.dumps(meta))
    wrapper.get_booster().save_model(path)


@pytest.mark.parametrize(
    ("classes", "datatype"),
    [
        (["setosa", "versicolor", "virginica"], "BYTES"),
        ([10, 20, 30], "INT64"),
        ([0.5, 1.5, 2.5], "FP64"),
    ],
)
def test_a_classifier_that_carries_its_classes_answers_them(tmp_path, classes, datatype):
    xgboost = pytest.importorskip("xgboost")
    x, y = _dataset("iris")
    wrapper = xgboost.XGBClassifier(n_estimators=5, n_jobs=1).fit(x, y)
    _with_classes(wrapper, tmp_path / "iris.ubj", classes)
    model = _load(tmp_path / "iris.ubj")
    answer = _answer(model, x)
    np.testing.assert_array_equal(answer["predict"], np.asarray(classes)[wrapper.predict(x)])
    np.testing.assert_allclose(answer["predict_proba"], wrapper.predict_proba(x), rtol=1e-6)
    assert model.outputs[0] == TensorSpec("predict", datatype, (-1,))


def test_the_installed_wrapper_fits_indices_only_and_saves_no_classes(tmp_path):
    """xgboost >= 2 fits labels 0..n-1 only, and saves no classes: the labels are indices."""
    xgboost = pytest.importorskip("xgboost")
    x, y = _dataset("binary")
    with pytest.raises(ValueError, match="Invalid classes"):
        xgboost.XGBClassifier(n_estimators=2).fit(x, np.where(y == 1, "yes", "no"))
    xgboost.XGBClassifier(n_estimators=2, n_jobs=1).fit(x, y).save_model(tmp_path / "m.json")
    booster = xgboost.Booster(model_file=str(tmp_path / "m.json"))
    saved = json.loads(booster.attr("scikit_learn"))
    assert saved["_estimator_type"] == "classifier"
    assert "classes_" not in saved or saved["classes_"] == [0, 1]


@pytest.mark.parametrize("kind", ["booster", "regressor"])
def test_a_raw_booster_or_a_regressor_answers_what_inplace_predict_gives(tmp_path, kind):
    xgboost = pytest.importorskip("xgboost")
    x, y = _dataset("binary")
    if kind == "booster":
        params = {"objective": "binary:logistic", "nthread": 1}
        booster = xgboost.train(params, xgboost.DMatrix(x, label=y), num_boost_round=5)
        booster.save_model(tmp_path / "m.json")
    else:
        regressor = xgboost.XGBRegressor(n_estimators=5, n_jobs=1).fit(x, y)
        regressor.save_model(tmp_path / "m.json")
        booster = regressor.get_booster()
    model = _load(tmp_path / "m.json")
    assert isinstance(model, loader.XGBoostModel)
    answer = model.predict({"input": x.astype(np.float32)}, ["predict"])
    np.testing.assert_array_equal(answer["predict"], booster.inplace_predict(x))
    assert model.outputs == [TensorSpec("predict", "FP32", ())]
    assert model.proba_output is None


def test_a_classifier_answers_through_the_handler_in_both_protocols(tmp_path):
    xgboost = pytest.importorskip("xgboost")
    x, y = _dataset("iris")
    wrapper = xgboost.XGBClassifier(n_estimators=5, n_jobs=1).fit(x, y)
    names = ["setosa", "versicolor", "virginica"]
    _with_classes(wrapper, tmp_path / "iris.json", names)
    config = protocol.Configure(
        instance_id="i-1",
        function_name="iris",
        function_version="$LATEST",
        handler="",
        task_root=str(tmp_path),
        memory_mb=512,
        concurrency=1,
        max_response_bytes=6 * 1024 * 1024,
        model=protocol.ModelConfig(path="iris.json", framework="xgboost"),
    )
    handler = ModelHandler(config, defer=True)
    rows = x[[0, 60, 120]]
    labels = [names[i] for i in wrapper.predict(rows)]

    def native(**params: str) -> Any:
        invoke = protocol.Invoke(
            request_id="r-1",
            payload=json.dumps({"inputs": rows.tolist()}).encode(),
            deadline_ms=0,
            params=params,
        )
        [(body, _)] = handler.run([handler.decode(invoke)])
        return json.loads(body)["outputs"]

    assert native() == labels
    np.testing.assert_allclose(native(proba="1"), wrapper.predict_proba(rows), rtol=1e-6)
    metadata = json.loads(handler.metadata())
    assert metadata["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP32", "shape": [-1, 3]},
    ]
    header = {
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": [3, 4], "data": rows.ravel().tolist()}
        ],
        "outputs": [{"name": "predict"}],
    }
    invoke = protocol.Invoke(
        request_id="r-2", payload=json.dumps(header).encode(), deadline_ms=0, protocol="v2"
    )
    [(body, _)] = handler.run([handler.decode(invoke)])
    assert json.loads(body)["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [3], "data": labels}
    ]
