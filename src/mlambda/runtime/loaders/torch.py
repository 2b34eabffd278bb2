"""PyTorch: a ``torch.export`` program (``.pt2``, saved with ``torch.export.save``) or a
TorchScript module (``.pt``/``.ts``, saved with ``torch.jit.save``), run on the CPU.

An exported program declares its inputs' dtypes and shapes (dynamic dimensions are -1); a
TorchScript module declares only its argument names, so its shapes are checked by the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlambda.runtime.protocol import ModelConfig
from mlambda.runtime.tensors import TensorSpec

_DTYPES = {
    "torch.float32": "FP32",
    "torch.float64": "FP64",
    "torch.float16": "FP16",
    "torch.int64": "INT64",
    "torch.int32": "INT32",
    "torch.int16": "INT16",
    "torch.int8": "INT8",
    "torch.uint8": "UINT8",
    "torch.bool": "BOOL",
}


def load(path: str, config: ModelConfig) -> TorchModel:
    import torch

    if path.lower().endswith(".pt2"):
        program = torch.export.load(path)
        placeholders = [n for n in program.graph.nodes if n.op == "placeholder"]
        user = set(program.graph_signature.user_inputs)
        inputs = [_spec(n.name, n.meta.get("val")) for n in placeholders if n.name in user]
        output_node = next(n for n in program.graph.nodes if n.op == "output")
        values = output_node.args[0]
        values = values if isinstance(values, list | tuple) else [values]
        names = ["output"] if len(values) == 1 else [f"output_{i}" for i in range(len(values))]
        outputs = [
            _spec(name, getattr(v, "meta", {}).get("val"))
            for name, v in zip(names, values, strict=True)
        ]
        return TorchModel(program.module(), inputs, outputs)
    module = torch.jit.load(path, map_location="cpu")
    module.eval()
    arguments = [a.name for a in module.forward.schema.arguments][1:]  # drop self
    inputs = [TensorSpec(name, "FP32", ()) for name in arguments]
    return TorchModel(module, inputs, [TensorSpec("output", "FP32", ())])


def _spec(name: str, value: Any) -> TensorSpec:
    if value is None or not hasattr(value, "shape"):
        return TensorSpec(name, "FP32", ())
    shape = tuple(d if isinstance(d, int) else -1 for d in value.shape)
    return TensorSpec(name, _DTYPES.get(str(value.dtype), "FP32"), shape)


class UnsupportedOutputs(Exception):
    """The module's outputs are not what its signature declared."""


class TorchModel:
    def __init__(self, module: Any, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> None:
        self.module = module
        self.inputs = inputs
        self.outputs = outputs
        self.default_outputs = [t.name for t in outputs]
        self.proba_output: str | None = None

    def predict(self, inputs: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        import torch

        args = [torch.from_numpy(np.ascontiguousarray(inputs[t.name])) for t in self.inputs]
        with torch.inference_mode():
            result = self.module(*args)
        values = list(result) if isinstance(result, list | tuple) else [result]
        names = [t.name for t in self.outputs]
        if len(values) != len(names) or not all(hasattr(v, "detach") for v in values):
            raise UnsupportedOutputs(
                f"the module returned {type(result).__name__} with {len(values)} value(s); "
                f"this model declares {len(names)} output tensor(s) ({', '.join(names)}). A "
                "TorchScript module must return one tensor: use torch.export for several"
            )
        produced = {n: v.detach().numpy() for n, v in zip(names, values, strict=True)}
        return {name: produced[name] for name in wanted}
