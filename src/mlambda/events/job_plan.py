"""What a batch job is and how it splits into items (pure), as SageMaker Batch Transform splits
its input: one invocation per object (``per = "object"``), or per mini-batch of lines of JSON
lines and CSV files (``per = "line"``).

Per object, the payload is the object's JSON when it parses, else ``{"key", "body" (base64),
"isBase64Encoded": true}``; its result goes to ``OUTPUT/<relative key>.out``. Per line, each
mini-batch is ``{"inputs": [rows]}`` (a JSON line parsed, a CSV line as a list of strings) and the
function answers one result per row (a list, or ``{"outputs" | "predictions": [...]}``);
``OUTPUT/<file>.out`` gets one result line per input line, in input order. ``_manifest.json`` in
OUTPUT lists the items that succeeded and those that failed, with their errors.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import os
import urllib.parse
from collections.abc import Sequence
from typing import Any

import msgspec

from mlambda.errors import InvalidRequest

PER = ("object", "line")
LINE_SUFFIXES = (".jsonl", ".csv")
MANIFEST = "_manifest.json"
MAX_ROWS_PER_CALL = 10_000


class JobSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    function: str
    input: str  # s3://BUCKET/PREFIX/, an absolute folder or file, or s3://BUCKET/KEY.jsonl
    output: str  # s3://BUCKET/PREFIX/ or an absolute folder
    per: str = "object"
    rows_per_call: int = 100
    concurrency: int | None = None  # twice the function's max_instances
    endpoint_url: str = ""  # the S3-compatible store of s3:// locations; absent: boto3's
    region: str = ""


@dataclasses.dataclass(frozen=True)
class Location:
    kind: str  # "s3" or "file"
    bucket: str  # s3 only
    path: str  # s3: a key or prefix; file: an absolute path

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.path}" if self.kind == "s3" else self.path


@dataclasses.dataclass(frozen=True)
class Item:
    """One invocation of the job: an object, or ``count`` lines of a file from ``first``."""

    id: str  # the relative key, and "#N" for a file's N-th mini-batch
    key: str  # where its input is: an S3 key or an absolute path
    relative: str  # the input's key under the job's input (what OUTPUT/<relative>.out names)
    first: int = 0
    count: int = 0


def parse_location(text: str, what: str) -> Location:
    """``s3://BUCKET/KEY`` or an absolute path (``file:///...`` too); a 400 otherwise."""
    if not isinstance(text, str) or not text:
        raise InvalidRequest(f"{what} is required: s3://BUCKET/PREFIX/ or an absolute path")
    if text.startswith("s3://"):
        parts = urllib.parse.urlsplit(text)
        if not parts.netloc:
            raise InvalidRequest(f"{what} {text!r}: s3://BUCKET/PREFIX names no bucket")
        return Location("s3", parts.netloc, urllib.parse.unquote(parts.path.lstrip("/")))
    path = (
        urllib.parse.unquote(text.removeprefix("file://")) if text.startswith("file://") else text
    )
    if not os.path.isabs(path):
        raise InvalidRequest(f"{what} {text!r}: a path on the platform's machine must be absolute")
    return Location("file", "", os.path.normpath(path))


def check_spec(body: Any) -> JobSpec:
    """A job's settings checked, or a 400 naming the mistake."""
    try:
        spec = msgspec.convert(body, JobSpec)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"job: {exc}") from None
    if spec.per not in PER:
        raise InvalidRequest(f"job: per must be 'object' or 'line', got {spec.per!r}")
    if not 1 <= spec.rows_per_call <= MAX_ROWS_PER_CALL:
        raise InvalidRequest(f"job: rows_per_call must be 1-{MAX_ROWS_PER_CALL}")
    if spec.concurrency is not None and not 1 <= spec.concurrency <= 1000:
        raise InvalidRequest("job: concurrency must be 1-1000")
    source, target = parse_location(spec.input, "input"), parse_location(spec.output, "output")
    if target.kind == "s3" and target.path and not target.path.endswith("/"):
        raise InvalidRequest(f"output {spec.output!r}: a prefix ends with '/'")
    if source.kind == target.kind and source.bucket == target.bucket and _inside(target, source):
        raise InvalidRequest("output is inside input: the job would read its own results")
    return spec


def _inside(target: Location, source: Location) -> bool:
    if target.kind == "s3":
        return target.path.startswith(source.path)
    return (target.path + os.sep).startswith(source.path.rstrip(os.sep) + os.sep)


def relative_key(location: Location, key: str) -> str:
    """A listed key's name under the job's input (a single file: its own name)."""
    base = location.path
    if location.kind == "file":
        return (
            os.path.relpath(key, base).replace(os.sep, "/")
            if key != base
            else os.path.basename(key)
        )
    if key == base:
        return key.rsplit("/", 1)[-1]
    return key[len(base) :].lstrip("/")


def wanted(key: str, per: str) -> bool:
    """Whether a listed object is input: per line, only .jsonl and .csv files; never a
    result or a manifest."""
    name = key.rsplit("/", 1)[-1]
    if name.startswith(".") or name == MANIFEST or name.endswith(".out"):
        return False
    return per == "object" or name.endswith(LINE_SUFFIXES)


def chunks(key: str, relative: str, lines: int, rows_per_call: int) -> list[Item]:
    """A file of ``lines`` lines as mini-batches of ``rows_per_call``."""
    return [
        Item(f"{relative}#{n}", key, relative, first, min(rows_per_call, lines - first))
        for n, first in enumerate(range(0, lines, rows_per_call))
    ]


def object_payload(relative: str, body: bytes) -> bytes:
    """The object itself when it is JSON, else its bytes in base64 with its key."""
    try:
        msgspec.json.decode(body)
        return body
    except msgspec.DecodeError:
        encoded = base64.b64encode(body).decode()
        return msgspec.json.encode({"key": relative, "body": encoded, "isBase64Encoded": True})


def lines_payload(lines: Sequence[str], relative: str, first: int) -> bytes:
    """``{"inputs": [rows]}``; a line that is not JSON (in a .jsonl file) fails its item."""
    if relative.endswith(".csv"):
        return msgspec.json.encode({"inputs": list(csv.reader(io.StringIO("\n".join(lines))))})
    rows = []
    for n, line in enumerate(lines):
        try:
            rows.append(msgspec.json.decode(line))
        except msgspec.DecodeError:
            raise ValueError(f"line {first + n + 1} of {relative} is not JSON") from None
    return msgspec.json.encode({"inputs": rows})


def line_results(body: bytes, count: int) -> list[bytes]:
    """One JSON line per input row, from the function's answer to a mini-batch."""
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise ValueError("the answer is not JSON: one result per row is needed") from None
    if isinstance(answer, dict):
        answer = answer.get("outputs", answer.get("predictions"))
    if not isinstance(answer, list) or len(answer) != count:
        got = len(answer) if isinstance(answer, list) else type(answer).__name__
        raise ValueError(
            f"{count} rows need {count} results (a list, or outputs or predictions), got {got}"
        )
    return [msgspec.json.encode(result) for result in answer]


def output_key(output: Location, relative: str, name: str = "") -> str:
    """Where an item's result (or, with ``name``, the manifest) goes."""
    leaf = name or f"{relative}.out"
    if output.kind == "s3":
        return output.path + leaf
    return os.path.join(output.path, *leaf.split("/"))


def non_empty(lines: list[str]) -> list[str]:
    return [line for line in lines if line.strip()]
