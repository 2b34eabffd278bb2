"""The model function handler: native and v2 request decoding, batch merging, fallback, encoding.

No framework is loaded: a handler built as a template (which only maps the model file) gets a
small model object in place of the one its loader would build.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mlambda.runtime import protocol
from mlambda.runtime.loaders import FRAMEWORKS
from mlambda.runtime.model import ModelHandler, Request
from mlambda.runtime.tensors import InvalidInput, TensorSpec

HEADER_LENGTH = "Inference-Header-Content-Length"


class Adder:
    """Sums each row (over every input); ``predict_proba`` is (sum, -sum).

    Inputs with NaN, or with different row counts, make it raise."""

    def __init__(self, *names: str, proba: bool = True) -> None:
        self.inputs = [TensorSpec(name, "FP64", (-1, -1)) for name in names or ("input",)]
        self.outputs = [TensorSpec("predict", "FP64", (-1,))]
        if proba:
            self.outputs.append(TensorSpec("predict_proba", "FP64", (-1, 2)))
        self.default_outputs = ["predict"]
        self.proba_output = "predict_proba" if proba else None
        self.calls: list[tuple[int, list[str]]] = []

    def predict(self, inputs: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        rows = {len(a) for a in inputs.values()}
        self.calls.append((max(rows), list(wanted)))
        if len(rows) != 1:
            raise ValueError("inputs with different row counts")
        if any(np.isnan(a).any() for a in inputs.values()):
            raise ValueError("NaN in the input")
        total = sum(a.reshape(len(a), -1).sum(axis=1) for a in inputs.values())
        outputs = {"predict": total, "predict_proba": np.stack([total, -total], axis=1)}
        return {name: outputs[name] for name in wanted}


def _handler(tmp_path: Path, model: Adder, hooks: str = "") -> ModelHandler:
    unforkable = next(name for name, f in FRAMEWORKS.items() if not f.fork_safe)
    (tmp_path / "model.bin").write_bytes(b"weights")
    config = protocol.Configure(
        instance_id="i-1",
        function_name="adder",
        function_version="3",
        handler=hooks,
        task_root=str(tmp_path),
        memory_mb=512,
        concurrency=1,
        max_response_bytes=6 * 1024 * 1024,
        model=protocol.ModelConfig(path="model.bin", framework=unforkable, hooks=hooks),
    )
    handler = ModelHandler(config, defer=True)
    assert handler.model is None  # a template maps the file; the model comes after the fork
    handler.model = model
    return handler


@pytest.fixture
def model() -> Adder:
    return Adder()


@pytest.fixture
def handler(tmp_path, model) -> ModelHandler:
    return _handler(tmp_path, model)


def _invoke(payload: bytes | dict, kind: str = "", **params: str) -> protocol.Invoke:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return protocol.Invoke(
        request_id="r-1", payload=body, deadline_ms=0, protocol=kind, params=params
    )


def _answer(handler: ModelHandler, payload: bytes | dict, kind: str = "", **params: str):
    """Decode one request, run it, and return (JSON body or bytes, headers)."""
    [outcome] = handler.run([handler.decode(_invoke(payload, kind, **params))])
    assert not isinstance(outcome, BaseException), outcome
    body, headers = outcome
    if HEADER_LENGTH in headers:
        return body, headers
    return json.loads(body), headers


def _refused(handler: ModelHandler, payload: bytes | dict, kind: str = "", **params: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        handler.decode(_invoke(payload, kind, **params))
    return str(caught.value)


def _native(handler: ModelHandler, rows: list) -> Request:
    return handler.decode(_invoke({"inputs": rows}))


def _outputs(outcome) -> list:
    assert not isinstance(outcome, BaseException), outcome
    return json.loads(outcome[0])["outputs"]


def _binary_tensor(name: str, shape: list[int], size: object) -> dict:
    """A v2 input whose data follows the header (``size`` bytes)."""
    return {
        "name": name,
        "datatype": "FP64",
        "shape": shape,
        "parameters": {"binary_data_size": size},
    }


def _v2_binary(header: dict, *blobs: bytes) -> tuple[bytes, str]:
    head = json.dumps(header).encode()
    return head + b"".join(blobs), str(len(head))


# -- native requests ------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["inputs", "instances"])
def test_a_native_request_takes_rows_under_inputs_or_instances(handler, key):
    body, headers = _answer(handler, {key: [[1, 2], [3, 4.5]]})
    assert body == {"outputs": [3.0, 7.5]}
    assert headers == {}


def test_a_native_request_decodes_to_the_inputs_datatype_and_the_default_outputs(handler):
    request = _native(handler, [[1, 2]])
    assert request.inputs["input"].dtype == np.float64
    assert request.wanted == ["predict"]


@pytest.mark.parametrize(
    ("payload", "params"),
    [
        ({"inputs": [[1, 2]]}, {"proba": "1"}),
        ({"inputs": [[1, 2]]}, {"proba": "true"}),
        ({"inputs": [[1, 2]], "proba": True}, {}),
    ],
)
def test_proba_asks_for_the_models_proba_output(handler, payload, params):
    assert handler.decode(_invoke(payload, **params)).wanted == ["predict_proba"]
    assert _answer(handler, payload, **params)[0] == {"outputs": [[3.0, -3.0]]}


@pytest.mark.parametrize("params", [{"proba": "0"}, {"proba": ""}, {}])
def test_without_proba_the_default_outputs_are_asked_for(handler, params):
    assert handler.decode(_invoke({"inputs": [[1, 2]]}, **params)).wanted == ["predict"]


def test_proba_is_refused_for_a_model_without_predict_proba(tmp_path):
    handler = _handler(tmp_path, Adder(proba=False))
    message = _refused(handler, {"inputs": [[1, 2]]}, proba="1")
    assert message == "this model has no predict_proba; call it without proba"


@pytest.mark.parametrize("payload", [b"", b"[[1, 2]]", b'{"rows": [[1, 2]]}'])
def test_a_native_request_without_inputs_is_told_the_shape_of_one(handler, payload):
    message = _refused(handler, payload)
    assert message.startswith('a model function takes {"inputs": [[...], ...]} (or "instances")')
    assert "'input' FP64 [-1, -1]" in message


def test_a_native_request_body_that_is_not_json_is_refused(handler):
    assert _refused(handler, b"{inputs").startswith("the request body is not JSON")


def test_a_multi_input_model_takes_a_dict_of_named_inputs(tmp_path):
    handler = _handler(tmp_path, Adder("a", "b"))
    body, _ = _answer(handler, {"inputs": {"a": [[1, 2]], "b": [[10]]}})
    assert body == {"outputs": [13.0]}


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ([[1, 2]], "this model takes several inputs ('a' FP64 [-1, -1], 'b' FP64 [-1, -1])"),
        ({"a": [[1]]}, "missing input(s) 'b'"),
        ({"a": [[1]], "c": [[1]]}, "unknown input(s) 'c'; the model takes 'a' FP64"),
    ],
)
def test_a_multi_input_model_refuses_anything_but_all_its_named_inputs(tmp_path, inputs, expected):
    handler = _handler(tmp_path, Adder("a", "b"))
    assert expected in _refused(handler, {"inputs": inputs})


def test_a_single_input_model_also_takes_its_input_by_name(handler):
    assert _answer(handler, {"inputs": {"input": [[1, 1]]}})[0] == {"outputs": [2.0]}


def test_hooks_run_around_the_model(tmp_path, monkeypatch):
    (tmp_path / "adder_hooks.py").write_text(
        "def preprocess(rows):\n"
        "    return [[2 * x for x in row] for row in rows]\n"
        "def postprocess(sums):\n"
        "    return {'sums': sums.tolist()}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        handler = _handler(tmp_path, Adder(), hooks="adder_hooks")
        assert _answer(handler, {"inputs": [[1, 2]]})[0] == {"outputs": {"sums": [6.0]}}
    finally:
        sys.modules.pop("adder_hooks", None)


def test_metadata_describes_the_models_signature(handler):
    assert json.loads(handler.metadata()) == {
        "name": "adder",
        "versions": ["3"],
        "platform": handler.framework.name,
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, -1]}],
        "outputs": [
            {"name": "predict", "datatype": "FP64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]},
        ],
    }


# -- Open Inference Protocol v2 requests ----------------------------------------------------

V2_JSON = {
    "id": "req-7",
    "inputs": [{"name": "input", "datatype": "FP64", "shape": [2, 2], "data": [1, 2, 3, 4]}],
}


def test_a_v2_json_request_gets_every_output_as_json(handler):
    body, headers = _answer(handler, V2_JSON, "v2")
    assert headers == {}
    assert body == {
        "model_name": "adder",
        "model_version": "3",
        "id": "req-7",
        "outputs": [
            {"name": "predict", "datatype": "FP64", "shape": [2], "data": [3.0, 7.0]},
            {
                "name": "predict_proba",
                "datatype": "FP64",
                "shape": [2, 2],
                "data": [3.0, -3.0, 7.0, -7.0],
            },
        ],
    }


def test_a_v2_response_has_no_id_when_the_request_had_none(handler):
    body, _ = _answer(handler, {"inputs": V2_JSON["inputs"]}, "v2")
    assert "id" not in body


def test_a_v2_binary_request_reads_its_tensor_after_the_header(tmp_path):
    handler = _handler(tmp_path, Adder("a", "b"))
    a = np.array([[1.5, 2.5], [3.0, 4.0]], dtype="<f8").tobytes()
    header = {
        "inputs": [
            _binary_tensor("a", [2, 2], 32),
            {"name": "b", "datatype": "FP64", "shape": [2, 1], "data": [10, 20]},
        ],
        "outputs": [{"name": "predict"}],
    }
    payload, length = _v2_binary(header, a)
    body, headers = _answer(handler, payload, "v2", header_length=length)
    assert headers == {}
    assert body["outputs"] == [
        {"name": "predict", "datatype": "FP64", "shape": [2], "data": [14.0, 27.0]}
    ]


def test_v2_binary_inputs_are_read_in_the_order_of_the_header(tmp_path):
    handler = _handler(tmp_path, Adder("a", "b"))
    a = np.array([[1.0]], dtype="<f8").tobytes()
    b = np.array([[100.0, 200.0]], dtype="<f8").tobytes()
    header = {
        "inputs": [
            _binary_tensor("b", [1, 2], 16),
            _binary_tensor("a", [1, 1], 8),
        ]
    }
    payload, length = _v2_binary(header, b, a)
    request = handler.decode(_invoke(payload, "v2", header_length=length))
    assert request.inputs["a"].tolist() == [[1.0]]
    assert request.inputs["b"].tolist() == [[100.0, 200.0]]


def test_binary_data_output_sends_outputs_as_raw_bytes_after_the_header(handler):
    header = {**V2_JSON, "parameters": {"binary_data_output": True}}
    body, headers = _answer(handler, header, "v2")
    length = int(headers[HEADER_LENGTH])
    head = json.loads(body[:length])
    [predict, proba] = head["outputs"]
    assert predict["parameters"] == {"binary_data_size": 16}
    assert proba["parameters"] == {"binary_data_size": 32}
    assert "data" not in predict
    raw = body[length:]
    assert np.frombuffer(raw[:16], "<f8").tolist() == [3.0, 7.0]
    assert np.frombuffer(raw[16:], "<f8").reshape(2, 2).tolist() == [[3.0, -3.0], [7.0, -7.0]]
    assert len(raw) == 48


def test_binary_data_may_be_asked_for_one_output_only(handler):
    header = {
        **V2_JSON,
        "outputs": [
            {"name": "predict_proba", "parameters": {"binary_data": True}},
            {"name": "predict"},
        ],
    }
    body, headers = _answer(handler, header, "v2")
    head = json.loads(body[: int(headers[HEADER_LENGTH])])
    [proba, predict] = head["outputs"]
    assert proba["parameters"] == {"binary_data_size": 32}
    assert predict["data"] == [3.0, 7.0]
    assert len(body) == int(headers[HEADER_LENGTH]) + 32


def test_requested_outputs_are_the_only_ones_computed_and_sent(handler, model):
    body, _ = _answer(handler, {**V2_JSON, "outputs": [{"name": "predict_proba"}]}, "v2")
    assert [o["name"] for o in body["outputs"]] == ["predict_proba"]
    assert model.calls == [(2, ["predict_proba"])]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            {**V2_JSON, "outputs": [{"name": "classes"}]},
            "unknown output 'classes'; the model has 'predict', 'predict_proba'",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [1]}]},
            "unknown input 'x'; the model takes 'input' FP64 [-1, -1]",
        ),
        ({"inputs": []}, "missing input(s) 'input'"),
        ({"inputs": {"input": [1]}}, 'an inference request needs "inputs": a list of tensors'),
        ({"inputs": [{"shape": [1, 1]}]}, 'each input needs a "name", "shape", "datatype"'),
        (
            {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 1], "data": [1]}]},
            "input 'input': datatype 'FP32' does not match the model's 'FP64'",
        ),
    ],
)
def test_a_v2_request_that_does_not_fit_the_model_is_refused(handler, header, expected):
    assert expected in _refused(handler, header, "v2")


def test_a_v2_header_that_is_not_json_is_refused(handler):
    message = _refused(handler, b"not json", "v2")
    assert message.startswith("the inference request header is not JSON")


def test_a_header_length_beyond_the_body_is_refused(handler):
    message = _refused(handler, b"{}", "v2", header_length="10")
    assert message == "Inference-Header-Content-Length (10) exceeds the body (2 bytes)"


@pytest.mark.parametrize("size", [33, -1, "32"])
def test_a_binary_data_size_that_overruns_the_body_is_refused(handler, size):
    header = {"inputs": [_binary_tensor("input", [2, 2], size)]}
    payload, length = _v2_binary(header, bytes(32))
    message = _refused(handler, payload, "v2", header_length=length)
    assert message == f"input 'input': binary_data_size {size!r} overruns the body"


# -- running batches ------------------------------------------------------------------------


def test_compatible_requests_go_through_the_model_in_one_call(handler, model):
    requests = [
        _native(handler, [[1, 1]]),
        _native(handler, [[2, 2], [3, 3]]),
        _native(handler, [[4, 4], [5, 5], [6, 6]]),
    ]
    results = handler.run(requests)
    assert model.calls == [(6, ["predict"])]
    assert [_outputs(r) for r in results] == [[2.0], [4.0, 6.0], [8.0, 10.0, 12.0]]


def test_native_and_v2_requests_merge_and_each_is_answered_in_its_own_protocol(handler, model):
    v2 = handler.decode(_invoke({**V2_JSON, "outputs": [{"name": "predict"}]}, "v2"))
    native = _native(handler, [[10, 10]])
    v2_result, native_result = handler.run([v2, native])
    assert model.calls == [(3, ["predict"])]
    assert json.loads(v2_result[0])["outputs"][0]["data"] == [3.0, 7.0]
    assert _outputs(native_result) == [20.0]


@pytest.mark.parametrize(
    ("second", "why"),
    [
        ({"inputs": [[1, 2, 3]]}, "another row width"),
        ({"inputs": [[1, 2]], "proba": True}, "other outputs asked for"),
    ],
)
def test_requests_that_do_not_fit_together_go_in_separate_calls(handler, model, second, why):
    first = _native(handler, [[1, 2], [3, 4]])
    results = handler.run([first, handler.decode(_invoke(second)), _native(handler, [[5, 6]])])
    assert len(model.calls) == 2, why
    assert sorted(rows for rows, _ in model.calls) == [1, 3]
    assert _outputs(results[0]) == [3.0, 7.0]
    assert _outputs(results[2]) == [11.0]


def test_results_come_back_in_request_order_across_groups(handler, model):
    requests = [
        _native(handler, [[1, 0]]),
        _native(handler, [[1, 0, 0]]),
        _native(handler, [[2, 0]]),
        _native(handler, [[2, 0, 0]]),
    ]
    assert [_outputs(r) for r in handler.run(requests)] == [[1.0], [1.0], [2.0], [2.0]]
    assert len(model.calls) == 2


def test_a_request_that_breaks_the_merged_call_fails_alone(handler, model):
    requests = [
        _native(handler, [[1, 1]]),
        _native(handler, [[float("nan"), 1]]),
        _native(handler, [[2, 2], [3, 3]]),
    ]
    good, bad, other = handler.run(requests)
    assert model.calls == [(4, ["predict"]), (1, ["predict"]), (1, ["predict"]), (2, ["predict"])]
    assert _outputs(good) == [2.0]
    assert _outputs(other) == [4.0, 6.0]
    assert isinstance(bad, InvalidInput)
    assert str(bad) == "the model could not run on this input: ValueError: NaN in the input"


def test_a_model_error_on_a_lone_request_is_returned_as_invalid_input(handler):
    [outcome] = handler.run([_native(handler, [[float("nan")]])])
    assert isinstance(outcome, InvalidInput)


def test_a_merged_call_with_too_few_output_rows_falls_back_to_one_by_one(handler, model):
    predict = model.predict
    model.predict = lambda inputs, wanted: (
        {"predict": np.zeros(1)} if len(inputs["input"]) > 1 else predict(inputs, wanted)
    )
    results = handler.run([_native(handler, [[1, 1]]), _native(handler, [[2, 2]])])
    assert [_outputs(r) for r in results] == [[2.0], [4.0]]


def test_a_request_whose_inputs_have_different_row_counts_runs_alone(tmp_path):
    model = Adder("a", "b")
    handler = _handler(tmp_path, model)
    uneven = handler.decode(_invoke({"inputs": {"a": [[1], [2]], "b": [[1]]}}))
    even = handler.decode(_invoke({"inputs": {"a": [[1]], "b": [[1]]}}))
    assert uneven.rows is None
    uneven_result, even_result = handler.run([uneven, even])
    assert isinstance(uneven_result, InvalidInput)
    assert _outputs(even_result) == [2.0]
    assert len(model.calls) == 2


def test_a_failing_postprocess_fails_only_its_own_request(tmp_path, monkeypatch):
    (tmp_path / "picky_hooks.py").write_text(
        "def postprocess(sums):\n"
        "    if (sums > 100).any():\n"
        "        raise RuntimeError('too big')\n"
        "    return sums\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        model = Adder()
        handler = _handler(tmp_path, model, hooks="picky_hooks")
        small, big = handler.run([_native(handler, [[1, 1]]), _native(handler, [[100, 100]])])
    finally:
        sys.modules.pop("picky_hooks", None)
    assert model.calls == [(2, ["predict"])]
    assert _outputs(small) == [2.0]
    assert isinstance(big, RuntimeError)


# -- edge cases found while writing these tests ---------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {**V2_JSON, "parameters": [1]},
        {"inputs": [{**V2_JSON["inputs"][0], "parameters": "binary"}]},
        {**V2_JSON, "outputs": [{"name": "predict", "parameters": 5}]},
    ],
)
def test_v2_parameters_that_are_not_an_object_are_refused_as_invalid_input(handler, header):
    assert "parameters" in _refused(handler, header, "v2")
