"""The Lambda API's event invoke config, through boto3: what it sets governs retries, age and
destinations of asynchronous invocations, over mlambda.toml's [function.async]."""

from __future__ import annotations

import json
import time

import botocore.exceptions
import pytest

from tests.conftest import write_function
from tests.system.conftest import lambda_client

FAILS = """
    def handler(event, context):
        if event.get("fail"):
            raise ValueError("asked to fail")
        return event
"""


@pytest.fixture(scope="module")
def served(shared_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("eic")
    directory = write_function(root, "jobs", FAILS)
    with (directory / "mlambda.toml").open("a") as toml:
        toml.write("[function.async]\nmaximum_retry_attempts = 2\nretry_delay_s = 0.1\n")
    shared_server.deploy(directory)
    shared_server.deploy(write_function(root, "sink", FAILS))
    return shared_server


def _wait(server, invocation_id: str) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = server.http("GET", f"/v1/invocations/{invocation_id}").json()
        if record["state"] in ("succeeded", "failed", "expired"):
            return record
        time.sleep(0.05)
    raise AssertionError(record)


def _event(server, name: str, event: dict) -> str:  # type: ignore[no-untyped-def]
    response = lambda_client(server).invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps(event)
    )
    return response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def test_put_get_update_list_and_delete_as_boto3_calls_them(served):
    aws = lambda_client(served)
    # Before any Put: the function's own [function.async] is what Get shows.
    shown = aws.get_function_event_invoke_config(FunctionName="jobs")
    assert shown["MaximumRetryAttempts"] == 2
    sink_arn = "arn:aws:lambda:us-east-1:000000000000:function:sink"
    put = aws.put_function_event_invoke_config(
        FunctionName="jobs",
        MaximumRetryAttempts=0,
        MaximumEventAgeInSeconds=120,
        DestinationConfig={"OnFailure": {"Destination": sink_arn}},
    )
    assert put["MaximumRetryAttempts"] == 0 and put["MaximumEventAgeInSeconds"] == 120
    assert put["DestinationConfig"]["OnFailure"]["Destination"] == sink_arn
    assert put["FunctionArn"].endswith(":function:jobs:$LATEST")
    updated = aws.update_function_event_invoke_config(FunctionName="jobs", MaximumRetryAttempts=1)
    assert updated["MaximumRetryAttempts"] == 1 and updated["MaximumEventAgeInSeconds"] == 120
    listed = aws.list_function_event_invoke_configs(FunctionName="jobs")
    assert [c["MaximumRetryAttempts"] for c in listed["FunctionEventInvokeConfigs"]] == [1]
    # What the API set governs the next events: 2 attempts, then the failure goes to sink.
    record = _wait(served, _event(served, "jobs", {"fail": True}))
    assert record["state"] == "failed" and record["attempts"] == 2
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sunk = served.http("GET", "/v1/functions/sink/invocations?state=succeeded").json()
        if sunk["invocations"]:
            break
        time.sleep(0.05)
    (delivered,) = [r["result"] for r in sunk["invocations"]]
    assert delivered["requestContext"]["condition"] == "RetriesExhausted"
    aws.delete_function_event_invoke_config(FunctionName="jobs")
    # Back to mlambda.toml's section.
    assert aws.get_function_event_invoke_config(FunctionName="jobs")["MaximumRetryAttempts"] == 2


def test_bad_configs_and_unknown_functions_are_refused_as_aws_refuses_them(served):
    aws = lambda_client(served)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        aws.put_function_event_invoke_config(FunctionName="jobs", MaximumEventAgeInSeconds=60000)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        aws.put_function_event_invoke_config(
            FunctionName="jobs",
            DestinationConfig={"OnSuccess": {"Destination": "arn:aws:sns:us-east-1:1:topic"}},
        )
    assert "function ARN" in caught.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        aws.get_function_event_invoke_config(FunctionName="nope")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        aws.get_function_event_invoke_config(FunctionName="sink")
    assert "doesn't have an EventInvokeConfig" in caught.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        lambda_client(served, "wrong").get_function_event_invoke_config(FunctionName="jobs")
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_a_config_set_through_the_api_outlives_a_redeploy(served, tmp_path):
    aws = lambda_client(served)
    aws.put_function_event_invoke_config(FunctionName="sink", MaximumRetryAttempts=1)
    served.deploy(write_function(tmp_path, "sink", FAILS + "# changed\n"))
    assert aws.get_function_event_invoke_config(FunctionName="sink")["MaximumRetryAttempts"] == 1
    aws.delete_function_event_invoke_config(FunctionName="sink")
