"""A batch job's pure decisions, by table: where it reads and writes, what it refuses, how its
input splits into items, what each call is given and what its answer must be, and the CLI's
progress line."""

from __future__ import annotations

import base64
import json

import pytest

from mlambda.errors import InvalidRequest
from mlambda.events.job_plan import (
    Location,
    check_spec,
    chunks,
    line_results,
    lines_payload,
    object_payload,
    output_key,
    parse_location,
    relative_key,
    wanted,
)
from mlambda.job_cli import progress_line


@pytest.mark.parametrize(
    ("text", "location"),
    [
        ("s3://bucket/in/", Location("s3", "bucket", "in/")),
        ("s3://bucket", Location("s3", "bucket", "")),
        ("s3://bucket/a%20b.csv", Location("s3", "bucket", "a b.csv")),
        ("/srv/in/", Location("file", "", "/srv/in")),
        ("file:///srv/in", Location("file", "", "/srv/in")),
    ],
)
def test_a_location_is_a_bucket_and_key_or_an_absolute_path(text, location):
    assert parse_location(text, "input") == location


BASE = {"function": "f", "input": "s3://b/in/", "output": "s3://b/out/"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({**BASE, "input": "in/"}, "must be absolute"),
        ({**BASE, "input": "s3:///in/"}, "names no bucket"),
        ({**BASE, "output": "s3://b/out"}, "a prefix ends with '/'"),
        ({**BASE, "output": "s3://b/in/results/"}, "output is inside input"),
        ({**BASE, "input": "/srv/in", "output": "/srv/in/out"}, "output is inside input"),
        ({**BASE, "per": "file"}, "per must be 'object' or 'line'"),
        ({**BASE, "rows_per_call": 10_001}, "rows_per_call must be 1-10000"),
        ({**BASE, "concurrency": 0}, "concurrency must be 1-1000"),
        ({**BASE, "extra": 1}, "extra"),
        ({"function": "f"}, "input"),
    ],
)
def test_a_bad_job_is_refused_naming_the_mistake(body, says):
    with pytest.raises(InvalidRequest, match=says.replace("(", r"\(")):
        check_spec(body)


def test_a_folder_beside_the_input_is_not_inside_it():
    check_spec({**BASE, "input": "/srv/in", "output": "/srv/input-results"})


@pytest.mark.parametrize(
    ("location", "key", "relative"),
    [
        (Location("s3", "b", "in/"), "in/a/b.json", "a/b.json"),
        (Location("s3", "b", "in/rows.csv"), "in/rows.csv", "rows.csv"),
        (Location("s3", "b", ""), "x.json", "x.json"),
        (Location("file", "", "/srv/in"), "/srv/in/a/b.json", "a/b.json"),
        (Location("file", "", "/srv/rows.csv"), "/srv/rows.csv", "rows.csv"),
    ],
)
def test_an_item_is_named_by_its_key_under_the_input(location, key, relative):
    assert relative_key(location, key) == relative


@pytest.mark.parametrize(
    ("key", "per", "taken"),
    [
        ("in/a.json", "object", True),
        ("in/a.bin", "object", True),
        ("in/a.csv", "line", True),
        ("in/a.jsonl", "line", True),
        ("in/a.json", "line", False),
        ("in/a.json.out", "object", False),
        ("in/_manifest.json", "object", False),
        ("in/.hidden", "object", False),
    ],
)
def test_which_objects_are_input(key, per, taken):
    assert wanted(key, per) is taken


def test_a_file_splits_into_mini_batches_of_rows_per_call():
    items = chunks("/srv/in/rows.csv", "rows.csv", 250, 100)
    assert [(i.id, i.first, i.count) for i in items] == [
        ("rows.csv#0", 0, 100),
        ("rows.csv#1", 100, 100),
        ("rows.csv#2", 200, 50),
    ]
    assert chunks("k", "r", 0, 100) == []


def test_an_object_is_its_json_or_its_bytes_in_base64():
    assert object_payload("a.json", b'{"n": 1}') == b'{"n": 1}'
    wrapped = json.loads(object_payload("a.bin", b"\x00\xff"))
    assert wrapped == {"key": "a.bin", "body": base64.b64encode(b"\x00\xff").decode(),
                       "isBase64Encoded": True}  # fmt: skip


@pytest.mark.parametrize(
    ("lines", "relative", "inputs"),
    [
        (['{"a": 1}', "[1, 2]", '"x"'], "f.jsonl", [{"a": 1}, [1, 2], "x"]),
        (["1,2", 'a,"b,c"'], "f.csv", [["1", "2"], ["a", "b,c"]]),
    ],
)
def test_a_mini_batch_is_its_rows_as_inputs(lines, relative, inputs):
    assert json.loads(lines_payload(lines, relative, 0)) == {"inputs": inputs}


def test_a_line_that_is_not_json_names_its_number():
    with pytest.raises(ValueError, match=r"line 12 of f\.jsonl is not JSON"):
        lines_payload(['{"a": 1}', "{oops"], "f.jsonl", 10)


@pytest.mark.parametrize(
    "answer", [[1, {"b": 2}], {"outputs": [1, {"b": 2}]}, {"predictions": [1, {"b": 2}]}]
)
def test_an_answer_gives_one_result_line_per_row(answer):
    assert line_results(json.dumps(answer).encode(), 2) == [b"1", b'{"b":2}']


@pytest.mark.parametrize(
    ("body", "says"),
    [(b"[1]", "2 rows need 2 results"), (b'{"x": 1}', "got NoneType"), (b"nope", "not JSON")],
)
def test_an_answer_without_a_result_per_row_fails_its_item(body, says):
    with pytest.raises(ValueError, match=says):
        line_results(body, 2)


def test_results_go_under_the_output_with_out_appended():
    assert output_key(Location("s3", "b", "out/"), "a/b.json") == "out/a/b.json.out"
    assert output_key(Location("file", "", "/srv/out"), "a/b.json") == "/srv/out/a/b.json.out"
    assert output_key(Location("s3", "b", "out/"), "", "_manifest.json") == "out/_manifest.json"


def test_the_progress_line_shows_done_failed_rate_and_eta():
    job = {"items": 40, "done": 9, "failed": 1, "rate": 2.5, "etaSeconds": 12.0}
    assert progress_line(job) == (
        "[#######.......................] 10/40 done, 1 failed, 2.5/s, ETA 12 s"
    )
    assert progress_line({**job, "rate": None, "etaSeconds": None}).endswith("1 failed")
