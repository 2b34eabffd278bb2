"""Small models for every built-in runtime, trained or built deterministically in the test.

Each builder writes a model file under ``directory`` and returns (path, inputs, expected):
``inputs`` a batch the test sends, ``expected`` what the framework itself predicts for it in
this process. The benchmark builds its ONNX MLP here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FEATURES = 4


def dataset(rows: int = 200, features: int = FEATURES) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=features, n_informative=3, n_redundant=0, random_state=0
    )
    return x.astype(np.float64), y


def sklearn_forest(directory: Path, *, pickle: bool = False) -> tuple[Path, np.ndarray, Any]:
    import skops.io
    from sklearn.ensemble import RandomForestClassifier

    x, y = dataset()
    model = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(x, y)
    if pickle:
        import joblib

        path = directory / "forest.joblib"
        joblib.dump(model, path)
    else:
        path = directory / "forest.skops"
        skops.io.dump(model, path)
    batch = x[:5]
    return path, batch, (model.predict(batch), model.predict_proba(batch))


def xgboost_model(directory: Path, suffix: str = ".json") -> tuple[Path, np.ndarray, np.ndarray]:
    import xgboost

    x, y = dataset()
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgboost.DMatrix(x.astype(np.float32), label=y),
        num_boost_round=10,
    )
    path = directory / f"booster{suffix}"
    booster.save_model(path)
    batch = x[:5].astype(np.float32)
    return path, batch, booster.inplace_predict(batch)


def lightgbm_model(directory: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    import lightgbm

    x, y = dataset()
    booster = lightgbm.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1},
        lightgbm.Dataset(x, label=y),
        num_boost_round=10,
    )
    path = directory / "booster.txt"
    booster.save_model(str(path))
    batch = x[:5]
    return path, batch, booster.predict(batch)


def onnx_mlp(
    directory: Path, *, features: int = FEATURES, hidden: int = 64, layers: int = 2
) -> tuple[Path, np.ndarray, np.ndarray]:
    """A float32 MLP (MatMul/Add/Relu, softmax over 3 classes) with a dynamic batch."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, initializers = [], []
    previous, width = "input", features
    for layer in range(layers):
        weight = rng.standard_normal((width, hidden)).astype(np.float32) / np.sqrt(width)
        bias = rng.standard_normal(hidden).astype(np.float32) * 0.1
        initializers += [
            numpy_helper.from_array(weight, f"w{layer}"),
            numpy_helper.from_array(bias, f"b{layer}"),
        ]
        nodes += [
            helper.make_node("MatMul", [previous, f"w{layer}"], [f"m{layer}"]),
            helper.make_node("Add", [f"m{layer}", f"b{layer}"], [f"a{layer}"]),
            helper.make_node("Relu", [f"a{layer}"], [f"h{layer}"]),
        ]
        previous, width = f"h{layer}", hidden
    weight = rng.standard_normal((width, 3)).astype(np.float32) / np.sqrt(width)
    initializers.append(numpy_helper.from_array(weight, "w_out"))
    nodes += [
        helper.make_node("MatMul", [previous, "w_out"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = directory / "mlp.onnx"
    onnx.save(model, path)
    batch = rng.standard_normal((5, features)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return path, batch, session.run(None, {"input": batch})[0]


def torch_module(directory: Path, *, export: bool) -> tuple[Path, np.ndarray, np.ndarray]:
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    ).eval()
    batch = np.random.default_rng(0).standard_normal((5, FEATURES)).astype(np.float32)
    with torch.inference_mode():
        expected = module(torch.from_numpy(batch)).numpy()
    if export:
        batch_dim = torch.export.Dim("batch", min=1, max=4096)
        program = torch.export.export(
            module, (torch.from_numpy(batch),), dynamic_shapes=({0: batch_dim},)
        )
        path = directory / "mlp.pt2"
        torch.export.save(program, path)
    else:
        path = directory / "mlp.pt"
        torch.jit.save(torch.jit.script(module), path)
    return path, batch, expected
