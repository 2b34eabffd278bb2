"""Small models for every built-in runtime, trained or built deterministically in the test.

Each builder writes a model file under ``directory`` and returns (path, inputs, expected):
``inputs`` a batch the test sends, ``expected`` what the framework itself predicts for it in
this process. The benchmark builds its ONNX MLP here too.
"""

from __future__ import annotations

import json
import warnings
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


def xgboost_classifier(
    directory: Path, suffix: str = ".json", *, classes: int = 2, labels: list[Any] | None = None
) -> tuple[Path, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """An ``XGBClassifier`` saved with ``save_model``; expected: its (predict, predict_proba).

    With ``labels`` the model carries them (as xgboost < 2 saved its classes) and the
    expected labels are those."""
    import xgboost
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=200,
        n_features=FEATURES,
        n_informative=3,
        n_redundant=0,
        n_classes=classes,
        random_state=0,
    )
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=3, n_jobs=1).fit(x, y)
    path = directory / f"classifier{suffix}"
    if labels is None:
        model.save_model(path)
    else:
        meta = {"_estimator_type": "classifier", "classes_": labels}
        model.get_booster().set_attr(scikit_learn=json.dumps(meta))
        model.get_booster().save_model(path)
    batch = x[:8].astype(np.float32)
    predicted = model.predict(batch)
    if labels is not None:
        predicted = np.asarray(labels)[predicted]
    return path, batch, (predicted, model.predict_proba(batch))


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
        weight = (rng.standard_normal((width, hidden)) / np.sqrt(width)).astype(np.float32)
        bias = (rng.standard_normal(hidden) * 0.1).astype(np.float32)
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
    weight = (rng.standard_normal((width, 3)) / np.sqrt(width)).astype(np.float32)
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
        with warnings.catch_warnings():
            # TorchScript is deprecated in favour of torch.export; its files are still served.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.script(module), path)
    return path, batch, expected


def tflite_dense(directory: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """One FULLY_CONNECTED layer (4 -> 2) with a dynamic batch, written without TensorFlow."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as tfl

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((2, FEATURES)).astype(np.float32)
    bias = rng.standard_normal(2).astype(np.float32)

    def tensor(
        name: str, shape: list[int], buffer: int = 0, signature: list[int] | None = None
    ) -> Any:
        return tfl.TensorT(
            shape=shape,
            type=tfl.TensorType.FLOAT32,
            buffer=buffer,
            name=name,
            shapeSignature=signature,
        )

    fully_connected = tfl.BuiltinOperator.FULLY_CONNECTED
    model = tfl.ModelT(
        version=3,
        description="dense",
        # Buffer 0 is the empty sentinel every TFLite model needs.
        buffers=[
            tfl.BufferT(),
            tfl.BufferT(data=weight.view(np.uint8).ravel()),
            tfl.BufferT(data=bias.view(np.uint8).ravel()),
        ],
        operatorCodes=[
            tfl.OperatorCodeT(deprecatedBuiltinCode=fully_connected, builtinCode=fully_connected)
        ],
        subgraphs=[
            tfl.SubGraphT(
                name="main",
                tensors=[
                    tensor("input", [1, FEATURES], signature=[-1, FEATURES]),
                    tensor("weight", [2, FEATURES], buffer=1),
                    tensor("bias", [2], buffer=2),
                    tensor("output", [1, 2], signature=[-1, 2]),
                ],
                inputs=[0],
                outputs=[3],
                operators=[
                    tfl.OperatorT(
                        opcodeIndex=0,
                        inputs=[0, 1, 2],
                        outputs=[3],
                        builtinOptionsType=tfl.BuiltinOptions.FullyConnectedOptions,
                        builtinOptions=tfl.FullyConnectedOptionsT(),
                    )
                ],
            )
        ],
    )
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = directory / "dense.tflite"
    path.write_bytes(builder.Output())
    batch = np.random.default_rng(0).standard_normal((5, FEATURES)).astype(np.float32)
    return path, batch, batch @ weight.T + bias
