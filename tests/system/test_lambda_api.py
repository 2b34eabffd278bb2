"""The Lambda Invoke API, driven by boto3 itself (SigV4-signed with the API key as secret)."""

from __future__ import annotations

import base64
import json

import botocore.config
import botocore.exceptions
import pytest

from tests.conftest import write_function
from tests.system.conftest import lambda_client

ECHO = """
    def handler(event, context):
        print("handling", event.get("n"))
        if event.get("fail"):
            raise ValueError("bad input")
        return {"event": event, "function": context.function_name}
"""


@pytest.fixture(scope="module")
def served(shared_server, tmp_path_factory):
    shared_server.deploy(write_function(tmp_path_factory.mktemp("fns"), "echo", ECHO))
    return shared_server


def _client(server, secret: str | None = None):  # type: ignore[no-untyped-def]
    return lambda_client(server, secret)


def test_boto3_invoke_returns_the_handlers_result(served):
    response = _client(served).invoke(FunctionName="echo", Payload=json.dumps({"n": 1}))
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert json.load(response["Payload"])["event"] == {"n": 1}


def test_a_function_error_is_reported_as_lambda_reports_it(served):
    response = _client(served).invoke(FunctionName="echo", Payload=b'{"fail": true}')
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    body = json.load(response["Payload"])
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "bad input"


def test_log_type_tail_returns_the_invocations_log(served):
    response = _client(served).invoke(FunctionName="echo", Payload=b'{"n": 7}', LogType="Tail")
    log = base64.b64decode(response["LogResult"]).decode()
    assert "START RequestId:" in log and "handling 7" in log and "REPORT RequestId:" in log


def test_an_arn_names_the_function_too(served):
    arn = "arn:aws:lambda:us-east-1:000000000000:function:echo"
    response = _client(served).invoke(FunctionName=arn, Payload=b"{}")
    assert json.load(response["Payload"])["function"] == "echo"


def test_dry_run_checks_the_function_exists(served):
    assert _client(served).invoke(FunctionName="echo", InvocationType="DryRun")["StatusCode"] == 204


def test_unknown_function_is_resource_not_found(served):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _client(served).invoke(FunctionName="missing", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_wrong_secret_is_refused_as_aws_refuses_it(served):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _client(served, secret="not-the-key").invoke(FunctionName="echo", Payload=b"{}")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
