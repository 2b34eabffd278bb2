"""Tensors at a model's edge: JSON and Open Inference Protocol decoding, checks, encoding."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from mlambda.runtime.tensors import (
    InvalidInput,
    TensorSpec,
    datatype_of,
    from_json,
    from_v2,
    sample_inputs,
    to_json,
    to_v2,
)

FEATURES = TensorSpec("input", "FP32", (-1, 3))
TOKENS = TensorSpec("text", "BYTES", (-1,))


def _refused(value, spec: TensorSpec) -> str:
    with pytest.raises(InvalidInput) as caught:
        from_json(value, spec)
    return str(caught.value)


def _v2_refused(tensor: dict, spec: TensorSpec, binary: bytes | None = None) -> str:
    with pytest.raises(InvalidInput) as caught:
        from_v2(tensor, spec, None if binary is None else memoryview(binary))
    return str(caught.value)


def _length_prefixed(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


# -- from_json ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datatype", "value", "dtype"),
    [
        ("FP32", [[1, 2, 3]], np.float32),
        ("FP64", [[1.5, 2, 3]], np.float64),
        ("FP16", [[0.5, 1, 2]], np.float16),
        ("INT64", [[1, 2, 3]], np.int64),
        ("INT32", [[1.0, 2.0, -3.0]], np.int32),
        ("UINT8", [[0, 1, 255]], np.uint8),
        ("BOOL", [[True, False, True]], np.bool_),
    ],
)
def test_json_numbers_become_an_array_of_the_inputs_datatype(datatype, value, dtype):
    array = from_json(value, TensorSpec("input", datatype, (-1, 3)))
    assert array.dtype == np.dtype(dtype)
    assert array.shape == (1, 3)
    assert array.tolist() == np.asarray(value).astype(dtype).tolist()


def test_whole_floats_are_accepted_for_an_integer_input():
    assert from_json([[1.0, 2.0, 3.0]], TensorSpec("ids", "INT64", (-1, 3))).tolist() == [[1, 2, 3]]


@pytest.mark.parametrize(
    ("datatype", "value", "expected"),
    [
        ("FP32", [["1", "2", "3"]], "input 'input': expected FP32 numbers, got strings"),
        ("INT64", [[1, "2", 3]], "input 'input': expected INT64 numbers, got strings"),
        ("INT64", [[1.5, 2, 3]], "input 'input': expected INT64 integers, got fractional numbers"),
        ("UINT8", [[0.25, 1, 2]], "input 'input': expected UINT8 integers, got fractional numbers"),
        ("BOOL", [[1, 0, 1]], "input 'input': expected booleans (true/false)"),
    ],
)
def test_values_of_the_wrong_kind_are_refused_naming_input_and_datatype(datatype, value, expected):
    assert _refused(value, TensorSpec("input", datatype, (-1, 3))) == expected


@pytest.mark.parametrize(
    "value",
    [
        [[1, 2, 3], [4, 5]],
        [[1, 2, 3], 4],
    ],
)
def test_ragged_rows_are_refused_as_rows_of_different_lengths(value):
    assert "rows have different lengths" in _refused(value, FEATURES)


def test_a_null_among_numbers_is_refused():
    assert "input 'input': rows have different lengths or mixed types" in _refused(
        [[1, None, 3]], FEATURES
    )


def test_a_single_example_without_its_batch_list_gets_the_wrap_hint():
    message = _refused([1, 2, 3], FEATURES)
    assert message == (
        "input 'input': expected shape [-1, 3], got [3]; "
        "wrap a single example in a list to make a batch of one"
    )


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ([[1, 2]], "[1, 2]"),
        ([[[1, 2, 3]]], "[1, 1, 3]"),
        ([1, 2], "[2]"),
    ],
)
def test_a_shape_that_does_not_fit_is_refused_with_both_shapes(value, got):
    message = _refused(value, FEATURES)
    assert message == f"input 'input': expected shape [-1, 3], got {got}"
    assert "wrap" not in message


def test_any_size_dimensions_accept_any_size():
    spec = TensorSpec("image", "FP32", (-1, -1, 2))
    assert from_json(np.zeros((4, 7, 2)).tolist(), spec).shape == (4, 7, 2)


def test_an_input_of_unknown_shape_is_not_shape_checked():
    assert from_json([[[1]]], TensorSpec("x", "INT64", ())).shape == (1, 1, 1)


def test_bytes_input_keeps_strings_as_python_objects():
    array = from_json(["a", "bc"], TOKENS)
    assert array.dtype == np.object_
    assert array.tolist() == ["a", "bc"]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (["a", 1], "int"),
        ([None], "NoneType"),
        ([["a"], ["b", "c"]], "list"),
    ],
)
def test_bytes_input_refuses_anything_but_strings(value, kind):
    spec = TensorSpec("text", "BYTES", (-1,))
    assert _refused(value, spec) == f"input 'text': expected strings, got {kind}"


# -- from_v2 --------------------------------------------------------------------------------


def test_v2_json_data_is_reshaped_to_the_declared_shape():
    tensor = {"name": "input", "datatype": "FP32", "shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]}
    array = from_v2(tensor, FEATURES, None)
    assert array.dtype == np.float32
    assert array.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_v2_nested_json_data_is_accepted_too():
    tensor = {"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [[1, 2, 3]]}
    assert from_v2(tensor, FEATURES, None).tolist() == [[1, 2, 3]]


@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        ("FP32", [[0.5, -1.25, 3.0], [0.125, 2.0, 1e6]]),
        ("FP64", [[0.1, 0.2, 0.3], [1e300, -2.0, 5.0]]),
        ("INT64", [[1, -2, 3], [2**40, 0, -(2**62)]]),
        ("INT32", [[7, 8, 9], [-1, 0, 1]]),
        ("UINT16", [[0, 65535, 1], [2, 3, 4]]),
    ],
)
def test_v2_binary_data_is_read_as_little_endian(datatype, values):
    dtype = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8", "INT32": "<i4", "UINT16": "<u2"}
    raw = np.asarray(values, dtype=dtype[datatype]).tobytes()
    tensor = {
        "name": "input",
        "datatype": datatype,
        "shape": [2, 3],
        "parameters": {"binary_data_size": len(raw)},
    }
    array = from_v2(tensor, TensorSpec("input", datatype, (-1, 3)), memoryview(raw))
    assert array.shape == (2, 3)
    assert array.tolist() == values


def test_v2_binary_data_of_the_wrong_size_is_refused_with_the_expected_count():
    raw = np.zeros(5, dtype="<f4").tobytes()
    message = _v2_refused({"name": "input", "datatype": "FP32", "shape": [2, 3]}, FEATURES, raw)
    assert message == (
        "input 'input': 20 bytes of binary data, expected 24 for shape [2, 3] of FP32"
    )


def test_v2_bytes_binary_uses_four_byte_little_endian_lengths():
    raw = _length_prefixed(b"hello", b"", "h\u00e9".encode(), b"\x00\xff")
    tensor = {"name": "text", "datatype": "BYTES", "shape": [4]}
    array = from_v2(tensor, TOKENS, memoryview(raw))
    assert array.tolist() == [b"hello", b"", "h\u00e9".encode(), b"\x00\xff"]


def test_v2_bytes_round_trip_through_to_v2_binary():
    elements = [b"a", b"longer element", b""]
    array = np.empty(3, dtype=np.object_)
    array[:] = elements
    entry, raw = to_v2("text", array, binary=True)
    assert raw == _length_prefixed(*elements)
    assert entry["parameters"] == {"binary_data_size": len(raw)}
    decoded = from_v2({**entry, "name": "text"}, TOKENS, memoryview(raw))
    assert decoded.tolist() == elements


@pytest.mark.parametrize(
    "raw",
    [
        b"\x05\x00",  # a length cut short
        struct.pack("<I", 10) + b"abc",  # an element shorter than its length
    ],
)
def test_v2_truncated_bytes_binary_is_refused(raw):
    message = _v2_refused({"name": "text", "datatype": "BYTES", "shape": [1]}, TOKENS, raw)
    assert message == "input 'text': truncated BYTES element"


def test_v2_datatype_must_match_the_models():
    tensor = {"name": "input", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}
    assert _v2_refused(tensor, FEATURES) == (
        "input 'input': datatype 'FP64' does not match the model's 'FP32'"
    )


@pytest.mark.parametrize("shape", [None, "2,3", [2, -3], [2.0, 3]])
def test_v2_shape_must_be_a_list_of_non_negative_integers(shape):
    tensor = {"name": "input", "datatype": "FP32", "shape": shape, "data": [1, 2, 3]}
    assert _v2_refused(tensor, FEATURES) == (
        "input 'input': shape must be a list of non-negative integers"
    )


def test_v2_json_data_that_does_not_fill_the_shape_is_refused():
    tensor = {"name": "input", "datatype": "FP32", "shape": [2, 3], "data": [1, 2, 3]}
    assert _v2_refused(tensor, FEATURES) == (
        "input 'input': 3 values do not fill shape [2, 3] (6 values)"
    )


def test_v2_tensor_without_data_or_binary_is_refused():
    tensor = {"name": "input", "datatype": "FP32", "shape": [1, 3]}
    assert _v2_refused(tensor, FEATURES) == "input 'input': no data (nor binary_data_size)"


def test_v2_tensor_is_checked_against_the_models_shape():
    tensor = {"name": "input", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}
    assert _v2_refused(tensor, FEATURES) == ("input 'input': expected shape [-1, 3], got [1, 2]")


# -- to_v2 ----------------------------------------------------------------------------------


def test_to_v2_json_output_flattens_data_and_keeps_the_shape():
    entry, raw = to_v2("scores", np.array([[0.5, 0.25], [1.0, 0.0]], dtype=np.float32), False)
    assert entry == {
        "name": "scores",
        "datatype": "FP32",
        "shape": [2, 2],
        "data": [0.5, 0.25, 1.0, 0.0],
    }
    assert raw == b""


def test_to_v2_json_bytes_output_is_text():
    entry, _ = to_v2("label", np.array([b"cat", "dog"], dtype=np.object_), False)
    assert entry["datatype"] == "BYTES"
    assert entry["data"] == ["cat", "dog"]


@pytest.mark.parametrize(
    ("array", "datatype", "little_endian"),
    [
        (np.array([[1.5, -2.0]], dtype=np.float32), "FP32", "<f4"),
        (np.array([1, -(2**40)], dtype=np.int64), "INT64", "<i8"),
        (np.array([True, False]), "BOOL", "|b1"),
    ],
)
def test_to_v2_binary_output_is_little_endian_raw_bytes(array, datatype, little_endian):
    entry, raw = to_v2("out", array, True)
    assert entry["datatype"] == datatype
    assert entry["shape"] == list(array.shape)
    assert "data" not in entry
    assert raw == array.astype(little_endian).tobytes()
    assert entry["parameters"] == {"binary_data_size": len(raw)}


def test_to_v2_binary_string_output_uses_length_prefixes():
    _, raw = to_v2("label", np.array(["a", "bc"]), True)
    assert raw == _length_prefixed(b"a", b"bc")


def test_an_output_dtype_with_no_protocol_datatype_is_refused():
    with pytest.raises(InvalidInput, match=re.escape("complex128")):
        datatype_of(np.array([1j]))


# -- to_json --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.float32(0.5), 0.5),
        (np.int64(7), 7),
        (np.bool_(True), True),
        (np.array([[1, 2], [3, 4]], dtype=np.int32), [[1, 2], [3, 4]]),
        (np.array([0.25], dtype=np.float16), [0.25]),
        (b"caf\xc3\xa9", "caf\u00e9"),
        (b"\xff", "\ufffd"),
        (np.array([b"a", b"b"], dtype=np.object_), ["a", "b"]),
        (np.array(["x", "y"]), ["x", "y"]),
        ({"n": np.int8(1), 2: [np.float64(1.5)]}, {"n": 1, "2": [1.5]}),
        ((np.uint8(1), "s", None), [1, "s", None]),
    ],
)
def test_to_json_turns_numpy_values_into_plain_json(value, expected):
    result = to_json(value)
    assert result == expected
    assert type(result) is type(expected)


# -- edge cases found while writing these tests ---------------------------------


def test_to_v2_accepts_a_big_endian_output():
    entry, raw = to_v2("out", np.array([1, 2], dtype=">i4"), True)
    assert entry["datatype"] == "INT32"
    assert raw == np.array([1, 2], dtype="<i4").tobytes()


@pytest.mark.parametrize(
    ("datatype", "value"), [("UINT8", 300), ("UINT8", -1), ("INT64", 2**63), ("INT64", 1e20)]
)
def test_an_integer_outside_the_datatypes_range_is_refused(datatype, value):
    with pytest.raises(InvalidInput):
        from_json([value], TensorSpec("x", datatype, (-1,)))


def test_v2_bytes_binary_with_fewer_elements_than_the_shape_is_refused():
    raw = _length_prefixed(b"a", b"b")
    _v2_refused({"name": "text", "datatype": "BYTES", "shape": [3]}, TOKENS, raw)


def test_to_json_of_a_zero_dimensional_string_array_is_the_string():
    assert to_json(np.array("abc", dtype=np.object_)) == "abc"


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        ([TensorSpec("input", "FP64", (-1, 4))], {"input": ((1, 4), np.float64)}),
        ([TensorSpec("x", "FP32", (-1, 3, -1))], {"x": ((1, 3, 1), np.float32)}),
        ([TensorSpec("ids", "INT64", (2, 8))], {"ids": ((2, 8), np.int64)}),
        (
            [TensorSpec("a", "BOOL", (-1,)), TensorSpec("b", "UINT8", (-1, 2))],
            {"a": ((1,), np.bool_), "b": ((1, 2), np.uint8)},
        ),
        ([TensorSpec("text", "BYTES", (-1,))], {"text": ((1,), np.object_)}),
        ([TensorSpec("any", "FP32", ())], None),
        ([], None),
    ],
)
def test_a_priming_sample_is_zeros_shaped_by_the_input_signature(specs, expected):
    sample = sample_inputs(specs)
    if expected is None:
        assert sample is None
        return
    assert sample is not None
    assert {name: (a.shape, a.dtype.type) for name, a in sample.items()} == expected
    assert all(not a.any() for a in sample.values())
