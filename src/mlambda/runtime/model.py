"""A model function's handler: load the model with its framework's loader, decode requests
(native ``{"inputs": ...}`` or Open Inference Protocol v2), run batches, encode answers.

Imported only by model instances. A batch is a list of requests; requests whose tensors fit
together (same inner shapes, same outputs asked for) go through the model in one call, and
each caller gets back its own rows. Should the merged call fail, every request runs alone, so
one poisoned request fails by itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import mmap
import os
import sys
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
import numpy as np

from mlambda.runtime import protocol
from mlambda.runtime.building import load_model, map_files, shared_weights
from mlambda.runtime.loaders import FRAMEWORKS
from mlambda.runtime.process import release_free_memory
from mlambda.runtime.tensors import (
    InvalidInput,
    TensorSpec,
    from_json,
    from_v2,
    sample_inputs,
    to_json,
    to_v2,
)

Encoded = tuple[bytes, dict[str, str]]


class Model(Protocol):
    """What a loader returns."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    # Outputs a native request gets unless it asks for probabilities.
    default_outputs: list[str]
    # The output ``?proba=1`` asks for, if the model has one.
    proba_output: str | None

    def predict(self, inputs: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        """Run the model on a batch; return the ``wanted`` outputs, rows in input order."""
        ...


@dataclasses.dataclass
class Request:
    """One decoded invocation: its tensors, what it wants back, and how to answer it."""

    inputs: dict[str, np.ndarray]
    wanted: list[str]
    encode: Callable[[dict[str, np.ndarray]], Encoded]

    @property
    def rows(self) -> int | None:
        """Rows along the batch dimension, or None when the tensors cannot be merged."""
        counts = {a.shape[0] if a.ndim else None for a in self.inputs.values()}
        if len(counts) != 1:
            return None
        return counts.pop()

    def key(self) -> tuple[Any, ...]:
        return (
            tuple(self.wanted),
            tuple((n, a.dtype.str, a.shape[1:]) for n, a in sorted(self.inputs.items())),
        )


class ModelHandler:
    def __init__(self, config: protocol.Configure, *, defer: bool) -> None:
        assert config.model is not None
        self.config = config
        self.model_config = config.model
        self.framework = FRAMEWORKS[config.model.framework]
        self.path = os.path.join(config.task_root, config.model.path)
        self.hooks = _load_hooks(config.model.hooks, config.task_root)
        self.model: Model | None = None
        self._mapped: list[mmap.mmap] = []
        self._shared: Any = None
        if defer and not self.framework.fork_safe:
            # A template: read the weights once where the loader can share them, else map the
            # file (its pages are then shared in the page cache); each instance builds the
            # model after its fork, when threads are safe again.
            self._shared = shared_weights(config.model, config.task_root)
            if self._shared is None:
                self._mapped = map_files(self.path)
        else:
            self.model = load_model(config.model, config.task_root)

    def after_fork(self, threads: int, warm: bool = False) -> None:
        """In an instance forked from a template: build a model the template only mapped, with
        ``threads`` for its pools, or give a model built before the fork that many. ``warm``
        (a spare, ahead of need): also call the model once on a sample, as a template primes
        the models it builds, so that its first-call work is done too (for a model built here)
        and the memory that call writes is the spare's own before a call needs it."""
        if self.model is None:
            config = msgspec.structs.replace(self.model_config, threads=threads)
            self.model = load_model(config, self.config.task_root, self._shared)
            for mapped in self._mapped:
                mapped.close()
            self._mapped = []
            release_free_memory()  # what building it parsed and dropped
            if warm:
                self._warm()
        else:
            if threads != self.model_config.threads and hasattr(self.model, "set_threads"):
                self.model.set_threads(threads)
            if warm and self.framework.primable:
                # Built and primed in the template: the sample again writes, ahead of need, the
                # pages the first call would copy on write (reference counts, the allocator's).
                self._warm()

    def _warm(self) -> None:
        # Only a warm-up: a model that cannot run the sample answers calls as usual.
        with contextlib.suppress(Exception):
            self.prime(built_here=True)

    def prime(self, built_here: bool = False) -> bool:
        """In a template: one call on a sample of the input signature, so that the framework's
        first-call work is done before the fork. False when there was nothing to prime: the
        model is built after the fork, its calls start threads, or its signature gives no
        shape to sample."""
        if self.model is None or not (self.framework.primable or built_here):
            return False
        sample = sample_inputs(self.model.inputs)
        if sample is None:
            return False
        self.model.predict(sample, self.model.default_outputs)
        return True

    # -- requests -------------------------------------------------------------------------

    def decode(self, invoke: protocol.Invoke) -> Request:
        model = self._ready()
        if invoke.protocol == "v2":
            return self._decode_v2(model, invoke)
        return self._decode_native(model, invoke)

    def metadata(self) -> bytes:
        model = self._ready()
        return json.dumps(
            {
                "name": self.config.function_name,
                "versions": [self.config.function_version],
                "platform": self.framework.name,
                "inputs": [t.to_dict() for t in model.inputs],
                "outputs": [t.to_dict() for t in model.outputs],
            }
        ).encode()

    def _ready(self) -> Model:
        if self.model is None:  # (never after attach: the instance built it then)
            self.after_fork(self.model_config.threads)
        assert self.model is not None
        return self.model

    def _decode_native(self, model: Model, invoke: protocol.Invoke) -> Request:
        try:
            event = json.loads(invoke.payload) if invoke.payload.strip() else None
        except ValueError as exc:
            raise InvalidInput(f"the request body is not JSON: {exc}") from None
        if not isinstance(event, dict) or not ({"inputs", "instances"} & set(event)):
            raise InvalidInput(
                'a model function takes {"inputs": [[...], ...]} (or "instances"); '
                f"inputs: {_describe(model.inputs)}"
            )
        value = event["inputs"] if "inputs" in event else event["instances"]
        proba = invoke.params.get("proba", "") in ("1", "true") or event.get("proba") is True
        if proba and model.proba_output is None:
            raise InvalidInput("this model has no predict_proba; call it without proba")
        wanted = [model.proba_output] if proba and model.proba_output else model.default_outputs
        if self.hooks.preprocess is not None:
            value = self.hooks.preprocess(value)
        inputs = self._native_inputs(model, value)
        postprocess = self.hooks.postprocess

        def encode(outputs: dict[str, np.ndarray]) -> Encoded:
            result: Any = outputs[wanted[0]] if len(wanted) == 1 else outputs
            if postprocess is not None:
                result = postprocess(result)
            return json.dumps({"outputs": to_json(result)}).encode(), {}

        return Request(inputs, wanted, encode)

    def _native_inputs(self, model: Model, value: Any) -> dict[str, np.ndarray]:
        specs = {t.name: t for t in model.inputs}
        if isinstance(value, dict) and not value:
            raise InvalidInput(f"no inputs given; the model takes {_describe(model.inputs)}")
        if isinstance(value, dict) and set(value) <= set(specs):
            missing = sorted(set(specs) - set(value))
            if missing:
                raise InvalidInput(f"missing input(s) {', '.join(map(repr, missing))}")
            return {name: from_json(v, specs[name]) for name, v in value.items()}
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(specs))
            raise InvalidInput(
                f"unknown input(s) {', '.join(map(repr, unknown))}; "
                f"the model takes {_describe(model.inputs)}"
            )
        if len(model.inputs) != 1:
            raise InvalidInput(
                f"this model takes several inputs ({_describe(model.inputs)}): send "
                '{"inputs": {"<name>": [...], ...}}'
            )
        spec = model.inputs[0]
        if isinstance(value, np.ndarray):
            value = value.tolist() if value.dtype.kind != "O" else value
        return {spec.name: from_json(value, spec)}

    def _decode_v2(self, model: Model, invoke: protocol.Invoke) -> Request:
        payload = memoryview(invoke.payload)
        header_length = int(invoke.params.get("header_length") or len(payload))
        if header_length > len(payload):
            raise InvalidInput(
                f"Inference-Header-Content-Length ({header_length}) exceeds the body "
                f"({len(payload)} bytes)"
            )
        try:
            header = json.loads(bytes(payload[:header_length]))
        except ValueError as exc:
            raise InvalidInput(f"the inference request header is not JSON: {exc}") from None
        if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
            raise InvalidInput('an inference request needs "inputs": a list of tensors')
        specs = {t.name: t for t in model.inputs}
        inputs: dict[str, np.ndarray] = {}
        offset = header_length
        for tensor in header["inputs"]:
            if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
                raise InvalidInput('each input needs a "name", "shape", "datatype" and "data"')
            name = tensor["name"]
            if name not in specs:
                raise InvalidInput(
                    f"unknown input {name!r}; the model takes {_describe(model.inputs)}"
                )
            size = _parameters(tensor, f"input {name!r}").get("binary_data_size")
            binary = None
            if size is not None:
                if not isinstance(size, int) or size < 0 or offset + size > len(payload):
                    raise InvalidInput(
                        f"input {name!r}: binary_data_size {size!r} overruns the body"
                    )
                binary = payload[offset : offset + size]
                offset += size
            inputs[name] = from_v2(tensor, specs[name], binary)
        missing = sorted(set(specs) - set(inputs))
        if missing:
            raise InvalidInput(f"missing input(s) {', '.join(map(repr, missing))}")
        parameters = _parameters(header, "the request")
        binary_default = bool(parameters.get("binary_data_output", False))
        known = {t.name for t in model.outputs}
        requested = header.get("outputs") or [{"name": name} for name in _all_outputs(model)]
        wanted: list[str] = []
        binary_out: dict[str, bool] = {}
        for output in requested:
            name = output.get("name") if isinstance(output, dict) else None
            if name not in known:
                raise InvalidInput(
                    f"unknown output {name!r}; the model has {', '.join(map(repr, sorted(known)))}"
                )
            wanted.append(name)
            binary_out[name] = bool(
                _parameters(output, f"output {name!r}").get("binary_data", binary_default)
            )
        request_id = header.get("id")
        postprocess = self.hooks.postprocess
        config = self.config

        def encode(outputs: dict[str, np.ndarray]) -> Encoded:
            if postprocess is not None:
                result = postprocess(outputs[wanted[0]] if len(wanted) == 1 else outputs)
                outputs = result if isinstance(result, dict) else {wanted[0]: result}
            entries, blobs = [], []
            for name in wanted:
                entry, raw = to_v2(name, np.asarray(outputs[name]), binary_out.get(name, False))
                entries.append(entry)
                blobs.append(raw)
            body: dict[str, Any] = {
                "model_name": config.function_name,
                "model_version": config.function_version,
                "outputs": entries,
            }
            if request_id is not None:
                body["id"] = request_id
            head = json.dumps(body).encode()
            if not any(blobs):
                return head, {}
            return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head))}

        return Request(inputs, wanted, encode)

    # -- running --------------------------------------------------------------------------

    def run(self, requests: list[Request]) -> list[Encoded | BaseException]:
        """Answer each request: merged with others where they fit, alone otherwise."""
        results: list[Encoded | BaseException | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, request in enumerate(requests):
            if request.rows is None:
                results[index] = self._run_one(request)
            else:
                groups.setdefault(request.key(), []).append(index)
        for indexes in groups.values():
            if len(indexes) == 1:
                results[indexes[0]] = self._run_one(requests[indexes[0]])
                continue
            merged = self._run_merged([requests[i] for i in indexes])
            for index, outcome in zip(indexes, merged, strict=True):
                results[index] = outcome
        return [r for r in results if r is not None]

    def _run_merged(self, requests: list[Request]) -> list[Encoded | BaseException]:
        model = self._ready()
        rows = [r.rows or 0 for r in requests]
        merged = {
            name: np.concatenate([r.inputs[name] for r in requests]) for name in requests[0].inputs
        }
        try:
            outputs = model.predict(merged, requests[0].wanted)
            total = sum(rows)
            if any(np.ndim(o) == 0 or len(o) != total for o in outputs.values()):
                raise ValueError("outputs do not have one row per input row")
        except Exception:
            # Someone's rows broke the call: run each alone, so only that caller fails.
            return [self._run_one(r) for r in requests]
        bounds = np.cumsum([0, *rows])
        answers: list[Encoded | BaseException] = []
        for request, start, end in zip(requests, bounds[:-1], bounds[1:], strict=True):
            part = {name: value[start:end] for name, value in outputs.items()}
            answers.append(_encode(request, part))
        return answers

    def _run_one(self, request: Request) -> Encoded | BaseException:
        try:
            outputs = self._ready().predict(request.inputs, request.wanted)
        except (InvalidInput, MemoryError) as exc:
            return exc
        except Exception as exc:
            return InvalidInput(
                f"the model could not run on this input: {type(exc).__name__}: {exc}"
            )
        return _encode(request, outputs)


def _encode(request: Request, outputs: dict[str, np.ndarray]) -> Encoded | BaseException:
    try:
        return request.encode(outputs)
    except BaseException as exc:
        return exc


def _parameters(entry: dict[str, Any], what: str) -> dict[str, Any]:
    parameters = entry.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput(f"{what}: parameters must be an object")
    return parameters


def _all_outputs(model: Model) -> list[str]:
    return [t.name for t in model.outputs]


def _describe(specs: list[TensorSpec]) -> str:
    return ", ".join(
        f"{t.name!r} {t.datatype} {list(t.shape) if t.shape else 'any shape'}" for t in specs
    )


@dataclasses.dataclass
class Hooks:
    preprocess: Callable[[Any], Any] | None = None
    postprocess: Callable[[Any], Any] | None = None


def _load_hooks(module_name: str, task_root: str) -> Hooks:
    if not module_name:
        return Hooks()
    if task_root not in sys.path:
        sys.path.insert(0, task_root)
    module = importlib.import_module(module_name)
    return Hooks(getattr(module, "preprocess", None), getattr(module, "postprocess", None))
