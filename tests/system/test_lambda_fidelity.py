"""Handlers written for Lambda, called as Lambda's own clients call them (boto3, the AWS CLI v1):
the same environment, context, errors and logs as on Lambda."""

from __future__ import annotations

import base64
import json
import sys

import botocore.config
import botocore.exceptions
import pytest

from tests.conftest import write_function
from tests.system.conftest import Server, aws_cli, lambda_client

# Written as for Lambda: an AWS client made at import, with no AWS variable of the function's own.
ENVFN = """
    import os
    import boto3

    S3 = boto3.client("s3")
    DYNAMODB = boto3.client("dynamodb")  # NoRegionError without AWS_REGION / AWS_DEFAULT_REGION
    NAMES = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_RUNTIME_API",
             "LAMBDA_RUNTIME_DIR", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_INITIALIZATION_TYPE", "TZ",
             "_HANDLER", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_LOG_GROUP_NAME",
             "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
             "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")

    def handler(event, context):
        cc = context.client_context
        return {
            "env": {name: os.environ.get(name) for name in NAMES},
            "region": DYNAMODB.meta.region_name,
            "runtime_dir_exists": os.path.isdir(os.environ["LAMBDA_RUNTIME_DIR"]),
            "log_stream_name": context.log_stream_name,
            "arn": context.invoked_function_arn,
            "custom": cc.custom if cc else None,
            "client_env": cc.env if cc else None,
            "app_title": cc.client.app_title if cc and cc.client else None,
        }
"""

FAILING = """
    def helper(n):
        raise ValueError(f"bad input {n}")

    def handler(event, context):
        print("about to fail")
        helper(event.get("n", 0))
"""


@pytest.fixture(scope="module")
def served(shared_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("fns")
    shared_server.deploy(write_function(root, "envfn", ENVFN, memory_mb=256))
    # Instances forked from the runtime zygote (no template) run init with the same environment.
    shared_server.deploy(
        write_function(root, "envfn-untemplated", ENVFN, memory_mb=256, fork_template=False)
    )
    shared_server.deploy(write_function(root, "failing", FAILING))
    return shared_server


def _lambda(server, secret: str | None = None):  # type: ignore[no-untyped-def]
    return lambda_client(server, secret)


def _call(server, name: str = "envfn", **kwargs) -> dict:  # type: ignore[no-untyped-def]
    response = _lambda(server).invoke(FunctionName=name, Payload=b"{}", **kwargs)
    assert "FunctionError" not in response, response["Payload"].read()
    return json.load(response["Payload"])


@pytest.mark.parametrize("name", ["envfn", "envfn-untemplated"])
def test_a_handler_sees_lambdas_environment_and_an_aws_client_made_at_import_works(served, name):
    out = _call(served, name)
    env = out["env"]
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1" == out["region"]
    assert (
        env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}"
    )
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["TZ"] == ":UTC"
    assert env["_HANDLER"] == "app.handler"
    assert out["runtime_dir_exists"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    # The same stream name in the environment and the context, YYYY/MM/DD/[version]id.
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == out["log_stream_name"]
    assert out["log_stream_name"].count("/") == 3 and "[$LATEST]" in out["log_stream_name"]


def test_the_invoked_arn_is_the_one_called_in_the_platforms_region(served):
    assert _call(served)["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:envfn"
    assert _call(served, Qualifier="$LATEST")["arn"].endswith(":function:envfn:$LATEST")


def test_client_context_is_an_object_as_the_lambda_runtime_gives(served):
    sent = {"custom": {"tenant": "t-9"}, "env": {"locale": "fr"}, "client": {"app_title": "App"}}
    out = _call(served, ClientContext=base64.b64encode(json.dumps(sent).encode()).decode())
    assert out["custom"] == {"tenant": "t-9"}
    assert out["client_env"] == {"locale": "fr"}
    assert out["app_title"] == "App"
    assert _call(served)["custom"] is None


@pytest.mark.parametrize(
    "call",
    [
        {"FunctionName": "envfn", "Qualifier": "prod"},
        {"FunctionName": "envfn", "Qualifier": "1"},
        {"FunctionName": "envfn:prod"},
        {"FunctionName": "arn:aws:lambda:us-east-1:000000000000:function:envfn:7"},
    ],
)
def test_an_unknown_version_or_alias_is_not_found_and_never_runs_other_code(served, call):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _lambda(served).invoke(Payload=b"{}", **call)
    error = caught.value.response["Error"]
    assert error["Code"] == "ResourceNotFoundException"
    assert error["Message"].startswith("Function not found: arn:aws:lambda:us-east-1:")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_qualifier_in_the_name_and_another_in_the_query_is_refused(served):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _lambda(served).invoke(FunctionName="envfn:$LATEST", Qualifier="prod", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_an_unknown_lambda_operation_answers_an_error_botocore_parses(served):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _lambda(served).get_policy(FunctionName="envfn")
    error = caught.value.response["Error"]
    assert error["Code"] == "UnknownOperationException"
    assert "GetPolicy" in error["Message"] and "docs/lambda.md" in error["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _lambda(served).list_layers()
    assert "ListLayers" in caught.value.response["Error"]["Message"]


def test_a_wrong_secret_on_any_lambda_route_is_a_typed_403(served):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _lambda(served, secret="wrong").list_functions()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    anonymous = lambda_client(served, "x", key_id="no-such-key")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        anonymous.invoke(FunctionName="envfn", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] in (
        "UnrecognizedClientException",
        "InvalidSignatureException",
    )
    assert caught.value.response["Error"]["Message"]


def test_an_unhandled_exception_is_logged_with_its_traceback_under_var_task(served):
    response = _lambda(served).invoke(FunctionName="failing", Payload=b'{"n": 3}', LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    body = json.load(response["Payload"])
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "bad input 3"
    assert any('File "/var/task/app.py"' in frame for frame in body["stackTrace"])
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "[ERROR] ValueError: bad input 3" in tail
    logs = served.cli("logs", "failing")
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    error_at = next(i for i, line in enumerate(lines) if "[ERROR] ValueError: bad input 3" in line)
    after = "\n".join(lines[error_at:])
    assert "Traceback (most recent call last):" in after
    assert 'File "/var/task/app.py", line 3, in helper' in after
    assert 'raise ValueError(f"bad input {n}")' in after
    assert ".mlambda" not in after and "sha256-" not in after
    assert "about to fail" in "\n".join(lines[:error_at])


def test_the_aws_cli_gets_lambdas_errors(served, tmp_path):
    ok = aws_cli(served, "invoke", "--function-name", "envfn", "out.json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "out.json").read_text())["env"]["_HANDLER"] == "app.handler"
    missing = aws_cli(
        served, "invoke", "--function-name", "envfn", "--qualifier", "prod", "o.json", cwd=tmp_path
    )
    assert missing.returncode != 0
    assert "(ResourceNotFoundException)" in missing.stderr and "envfn:prod" in missing.stderr
    unknown = aws_cli(served, "get-policy", "--function-name", "envfn", cwd=tmp_path)
    assert unknown.returncode != 0
    assert "(UnknownOperationException)" in unknown.stderr, unknown.stderr


def test_the_region_is_the_platforms_own_setting(tmp_path):
    server = Server(tmp_path / "data", "--region", "eu-west-1").start()
    try:
        server.deploy(write_function(tmp_path / "fns", "envfn", ENVFN))
        client = lambda_client(server, region="eu-west-1")
        out = json.load(client.invoke(FunctionName="envfn", Payload=b"{}")["Payload"])
        assert out["env"]["AWS_REGION"] == out["region"] == "eu-west-1"
        assert out["arn"] == "arn:aws:lambda:eu-west-1:000000000000:function:envfn"
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            client.invoke(FunctionName="envfn", Qualifier="prod", Payload=b"{}")
        assert "arn:aws:lambda:eu-west-1:" in caught.value.response["Error"]["Message"]
    finally:
        server.stop()
