"""Schemathesis against a running `mlambda serve`, driven by its own /openapi.json: no 5xx, and
no response that breaks the document (status, content type, body schema, headers).

Bounded: a few examples per operation, so the whole walk stays well under a minute here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mlambda.gateway.openapi import document
from tests.conftest import write_function
from tests.system.conftest import Server

ECHO = "def handler(event, context):\n    return {'event': event}\n"
EXAMPLES = int(os.environ.get("MLAMBDA_FUZZ_EXAMPLES", "8"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# A bundle is sent as the bytes generated for it (the server reads the archive itself).
schemathesis.serializer.alias("application/gzip", "application/octet-stream")
# The SQS protocol's JSON (POST /).
schemathesis.serializer.alias("application/x-amz-json-1.0", "application/json")
schema = schemathesis.openapi.from_dict(document())
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _valid_http(headers: dict[str, str] | None) -> bool:
    """Whether the generated headers make an HTTP request at all; the HTTP server refuses one
    that does not (400, text/plain) before the application, which the document describes."""
    for name, value in (headers or {}).items():
        if not TOKEN.fullmatch(name) or CONTROL.search(str(value)):
            return False
        if name.lower() == "content-length" and not str(value).strip().isdigit():
            return False
    return True


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("fuzz") / "data").start()
    root = tmp_path_factory.mktemp("functions")
    server.deploy(write_function(root, "echo", ECHO))
    yield server
    server.stop()
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_route_answers_as_the_document_says(case, fuzzed):
    if case.path == "/v1/master-key/rotate":
        pytest.skip("rotation is exercised in test_audit_encryption (each call re-wraps all)")
    if not _valid_http(case.headers):
        response = case.call(base_url=fuzzed.url, timeout=30)
        assert response.status_code == 400
        return
    case.call_and_validate(
        base_url=fuzzed.url,
        headers={"Authorization": f"Bearer {fuzzed.key}"},
        checks=CHECKS,
        timeout=30,
    )
