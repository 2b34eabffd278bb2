"""ONNX: an ``.onnx`` (or ORT-format ``.ort``) model run by ONNX Runtime on the CPU.

Inputs and outputs, with their datatypes and shapes, come from the graph; a symbolic dimension
is -1. A session starts thread pools, so it is built in each instance after the fork.

Its weights need not be copied into each instance: a template reads the graph's initializers
once (``share``, with the ``onnx`` package), and every session built after the fork uses those
arrays in place (``SessionOptions.add_initializer``), so the pages stay shared copy-on-write.
Pre-packing is then off, since it would copy every weight matrix into each session.
"""

from __future__ import annotations

import numpy as np

from mlambda.runtime.protocol import ModelConfig
from mlambda.runtime.tensors import TensorSpec

_TYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int16)": "INT16",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


def share(path: str) -> dict[str, np.ndarray] | None:
    """In a template, before the fork: the model's initializers as arrays its instances share,
    or None where they cannot be read here (no ``onnx`` package, an ORT-format model)."""
    if not path.endswith(".onnx"):
        return None
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    try:
        model = onnx.load(path)  # external data too, from beside the file
    except Exception:
        return None  # ONNX Runtime reports what is wrong with it, in each instance
    # Read-only arrays over bytes of their own: the parsed model is dropped below.
    arrays = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    del model
    return arrays


def load(path: str, config: ModelConfig, shared: dict[str, np.ndarray] | None = None) -> OnnxModel:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = config.threads
    options.inter_op_num_threads = 1
    # The template's arrays, used in place: their OrtValues must live as long as the session.
    values = {n: onnxruntime.OrtValue.ortvalue_from_numpy(a) for n, a in (shared or {}).items()}
    for name, value in values.items():
        options.add_initializer(name, value)
    if values:
        options.add_session_config_entry("session.disable_prepacking", "1")
    session = onnxruntime.InferenceSession(
        path, sess_options=options, providers=["CPUExecutionProvider"]
    )
    model = OnnxModel(session)
    model.initializers = values
    return model


def _spec(node: object) -> TensorSpec:
    name = node.name  # type: ignore[attr-defined]
    datatype = _TYPES.get(node.type, "BYTES")  # type: ignore[attr-defined]
    shape = tuple(d if isinstance(d, int) else -1 for d in (node.shape or ()))  # type: ignore[attr-defined]
    return TensorSpec(name, datatype, shape)


class OnnxModel:
    def __init__(self, session: object) -> None:
        self.session = session
        self.initializers: dict[str, object] = {}  # what the session uses in place
        self.inputs = [_spec(n) for n in session.get_inputs()]  # type: ignore[attr-defined]
        self.outputs = [_spec(n) for n in session.get_outputs()]  # type: ignore[attr-defined]
        self.default_outputs = [t.name for t in self.outputs]
        names = [t.name for t in self.outputs]
        self.proba_output = next((n for n in names if "prob" in n.lower()), None)

    def predict(self, inputs: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        feed = {n: (a.astype(np.str_) if a.dtype.kind == "O" else a) for n, a in inputs.items()}
        results = self.session.run(wanted, feed)  # type: ignore[attr-defined]
        return {name: _as_array(value) for name, value in zip(wanted, results, strict=True)}


def _as_array(value: object) -> np.ndarray:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        # A ZipMap output (a list of {label: probability}): a [rows, classes] array.
        keys = list(value[0])
        return np.asarray([[row[k] for k in keys] for row in value], dtype=np.float32)
    return np.asarray(value)
