"""TFLite: a ``.tflite`` flatbuffer run by LiteRT's interpreter (``ai-edge-litert``).

Inputs and outputs come from the model; the first dimension is the batch dimension, and the
interpreter is resized when a request's batch differs. The interpreter keeps native threads
and is not safe to share, so each instance builds its own after the fork and calls it under a
lock.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from mlambda.runtime.protocol import ModelConfig
from mlambda.runtime.tensors import TensorSpec, datatype_of


def load(path: str, config: ModelConfig) -> TFLiteModel:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=config.threads)
    interpreter.allocate_tensors()
    return TFLiteModel(interpreter)


def _spec(detail: dict[str, Any]) -> TensorSpec:
    signature = list(detail.get("shape_signature", detail["shape"]))
    if signature:
        signature[0] = -1
    datatype = datatype_of(np.empty(0, dtype=detail["dtype"]))
    return TensorSpec(detail["name"], datatype, tuple(int(d) for d in signature))


class TFLiteModel:
    def __init__(self, interpreter: Any) -> None:
        self.interpreter = interpreter
        self._inputs = interpreter.get_input_details()
        self._outputs = interpreter.get_output_details()
        self.inputs = [_spec(d) for d in self._inputs]
        self.outputs = [_spec(d) for d in self._outputs]
        self.default_outputs = [t.name for t in self.outputs]
        self.proba_output: str | None = None
        self._lock = threading.Lock()
        self._shapes = {d["index"]: tuple(int(x) for x in d["shape"]) for d in self._inputs}

    def predict(self, inputs: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        with self._lock:
            interpreter = self.interpreter
            resized = False
            for detail in self._inputs:
                shape = inputs[detail["name"]].shape
                if self._shapes[detail["index"]] != shape:
                    interpreter.resize_tensor_input(detail["index"], list(shape))
                    self._shapes[detail["index"]] = shape
                    resized = True
            if resized:
                interpreter.allocate_tensors()
            for detail in self._inputs:
                interpreter.set_tensor(detail["index"], inputs[detail["name"]])
            interpreter.invoke()
            by_name = {d["name"]: d for d in interpreter.get_output_details()}
            return {
                name: np.copy(interpreter.get_tensor(by_name[name]["index"])) for name in wanted
            }
