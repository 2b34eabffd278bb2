"""Tensors at the edge of a model: signatures, JSON and binary decoding, validation.

Imported only by model instances (it needs numpy). Every check raises ``InvalidInput`` with a
message that names the input and what was wrong, which the caller gets as a 400.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

import numpy as np

# Open Inference Protocol datatypes and their numpy equivalents.
DATATYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
_LENGTH = struct.Struct("<I")


class InvalidInput(Exception):
    """The request's inputs do not fit the model's signature."""


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    # -1 for a dimension of any size; the first is the batch dimension where it is -1.
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def datatype_of(array: np.ndarray) -> str:
    if array.dtype.kind in "OUS":
        return "BYTES"
    native = array.dtype.newbyteorder("=")
    for name, dtype in DATATYPES.items():
        if dtype is not np.object_ and native == np.dtype(dtype):
            return name
    raise InvalidInput(f"outputs of dtype {array.dtype} have no inference protocol datatype")


def from_json(value: Any, spec: TensorSpec) -> np.ndarray:
    """A JSON value (nested lists) as an array of the input's datatype, shape-checked."""
    if spec.datatype == "BYTES":
        array = np.asarray(value, dtype=np.object_)
        flat = array.reshape(-1)
        for element in flat:
            if not isinstance(element, str | bytes):
                raise InvalidInput(
                    f"input {spec.name!r}: expected strings, got {type(element).__name__}"
                )
    else:
        try:
            array = np.asarray(value)
        except ValueError as exc:
            raise InvalidInput(f"input {spec.name!r}: {_ragged(exc)}") from None
        array = _convert(array, spec)
    check_shape(array, spec)
    return array


def _ragged(exc: Exception) -> str:
    text = str(exc)
    if "inhomogeneous" in text or "sequence" in text:
        return "rows have different lengths (the input must be a rectangular array)"
    return text


def _convert(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    target = np.dtype(DATATYPES[spec.datatype])
    kind = array.dtype.kind
    if kind == "O":
        raise InvalidInput(
            f"input {spec.name!r}: rows have different lengths or mixed types "
            "(the input must be a rectangular array of numbers)"
        )
    if kind in "US":
        raise InvalidInput(f"input {spec.name!r}: expected {spec.datatype} numbers, got strings")
    whole = kind != "f" or bool(np.all(np.isfinite(array)) and np.all(array == np.round(array)))
    if target.kind in "iu" and not whole:
        raise InvalidInput(
            f"input {spec.name!r}: expected {spec.datatype} integers, got fractional numbers"
        )
    if target.kind == "b" and kind != "b":
        raise InvalidInput(f"input {spec.name!r}: expected booleans (true/false)")
    if target.kind in "iu" and array.size:
        limits = np.iinfo(target)
        low, high = array.min(), array.max()
        if low < limits.min or high > limits.max:
            raise InvalidInput(
                f"input {spec.name!r}: values must fit {spec.datatype} "
                f"({limits.min}..{limits.max}), got {low if low < limits.min else high}"
            )
    try:
        with np.errstate(over="raise"):
            return array.astype(target, copy=False)
    except (ValueError, TypeError, OverflowError, FloatingPointError) as exc:
        raise InvalidInput(f"input {spec.name!r}: does not fit {spec.datatype}: {exc}") from None


def check_shape(array: np.ndarray, spec: TensorSpec) -> None:
    if not spec.shape:
        return  # the model does not say (TorchScript): its own call will tell
    expected = list(spec.shape)
    got = list(array.shape)
    if len(got) == len(expected) - 1 and _fits(got, expected[1:]):
        raise InvalidInput(
            f"input {spec.name!r}: expected shape {_show(expected)}, got {_show(got)}; "
            "wrap a single example in a list to make a batch of one"
        )
    if len(got) != len(expected) or not _fits(got, expected):
        raise InvalidInput(
            f"input {spec.name!r}: expected shape {_show(expected)}, got {_show(got)}"
        )


def _fits(got: list[int], expected: list[int]) -> bool:
    return all(e == -1 or e == g for g, e in zip(got, expected, strict=True))


def _show(shape: list[int]) -> str:
    return "[" + ", ".join("-1" if d == -1 else str(d) for d in shape) + "]"


def from_v2(tensor: dict[str, Any], spec: TensorSpec, binary: memoryview | None) -> np.ndarray:
    """One Open Inference Protocol input tensor (JSON data, or ``binary`` bytes)."""
    name = spec.name
    datatype = tensor.get("datatype")
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidInput(f"input {name!r}: shape must be a list of non-negative integers")
    if datatype != spec.datatype:
        raise InvalidInput(
            f"input {name!r}: datatype {datatype!r} does not match the model's {spec.datatype!r}"
        )
    count = int(np.prod(shape)) if shape else 1
    if binary is not None:
        if datatype == "BYTES":
            elements = _bytes_elements(binary, name)
            if elements.size != count:
                raise InvalidInput(
                    f"input {name!r}: {elements.size} BYTES elements in the binary data, "
                    f"expected {count} for shape {shape}"
                )
            array = elements.reshape(shape) if count else _empty(shape)
        else:
            dtype = np.dtype(DATATYPES[datatype]).newbyteorder("<")
            if len(binary) != count * dtype.itemsize:
                raise InvalidInput(
                    f"input {name!r}: {len(binary)} bytes of binary data, expected "
                    f"{count * dtype.itemsize} for shape {shape} of {datatype}"
                )
            array = np.frombuffer(binary, dtype=dtype).reshape(shape)
            array = array.astype(dtype.newbyteorder("="), copy=False)
    else:
        if "data" not in tensor:
            raise InvalidInput(f"input {name!r}: no data (nor binary_data_size)")
        array = from_json(tensor["data"], TensorSpec(name, datatype, ()))
        if array.size != count:
            raise InvalidInput(
                f"input {name!r}: {array.size} values do not fill shape {shape} ({count} values)"
            )
        array = array.reshape(shape)
    check_shape(array, spec)
    return array


def _empty(shape: list[int]) -> np.ndarray:
    return np.empty(shape, dtype=np.object_)


def _bytes_elements(data: memoryview, name: str) -> np.ndarray:
    """Triton's BYTES encoding: each element a 4-byte little-endian length, then its bytes."""
    elements: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise InvalidInput(f"input {name!r}: truncated BYTES element")
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += 4
        if offset + length > len(data):
            raise InvalidInput(f"input {name!r}: truncated BYTES element")
        elements.append(bytes(data[offset : offset + length]))
        offset += length
    array = np.empty(len(elements), dtype=np.object_)
    array[:] = elements
    return array


def to_v2(name: str, array: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes]:
    """One output tensor: its JSON header entry and (for binary) its raw bytes."""
    datatype = datatype_of(array)
    entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if not binary:
        entry["data"] = to_json(array.reshape(-1))
        return entry, b""
    if datatype == "BYTES":
        raw = b"".join(
            _LENGTH.pack(len(b)) + b
            for b in (e if isinstance(e, bytes) else str(e).encode() for e in array.reshape(-1))
        )
    else:
        raw = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    entry["parameters"] = {"binary_data_size": len(raw)}
    return entry, raw


def to_json(value: Any) -> Any:
    """Arrays, numpy scalars and containers of them as plain JSON values."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return to_json(value.item())
        if value.dtype.kind in "OSU":
            return [to_json(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def sample_inputs(specs: list[TensorSpec]) -> dict[str, np.ndarray] | None:
    """Zeros shaped by each input's signature, one row where a dimension is free; None when an
    input has no shape (nothing to go by) or the model declares no inputs."""
    if not specs or any(not spec.shape for spec in specs):
        return None
    sample = {}
    for spec in specs:
        shape = tuple(1 if size < 0 else size for size in spec.shape)
        if spec.datatype == "BYTES":
            sample[spec.name] = np.full(shape, "", dtype=np.object_)
        else:
            sample[spec.name] = np.zeros(shape, dtype=DATATYPES[spec.datatype])
    return sample
