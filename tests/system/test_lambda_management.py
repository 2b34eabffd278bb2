"""The Lambda management API as boto3 and the AWS CLI v1 call it: a zip made for Lambda is
created, waited on, invoked, published, aliased with a canary, updated, shifted, rolled back
and deleted; each refusal raises the botocore exception Lambda's would."""

from __future__ import annotations

import base64
import collections
import io
import json
import zipfile

import botocore.exceptions
import httpx
import pytest

from tests.system.conftest import Server, aws_cli, lambda_client

CODE = """
import os

GENERATION = {generation}


def handler(event, context):
    return {{
        "generation": GENERATION,
        "version": context.function_version,
        "memory": context.memory_limit_in_mb,
        "colour": os.environ.get("COLOUR"),
    }}
"""


def lambda_zip(generation: int, extra: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("lambda_function.py", CODE.format(generation=generation))
        for name, text in (extra or {}).items():
            archive.writestr(name, text)
    return out.getvalue()


ROLE = "arn:aws:iam::000000000000:role/lambda-role"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("lambda-mgmt") / "data").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def aws(server):
    return lambda_client(server)


def _create(aws, name: str, generation: int = 1, **fields):  # type: ignore[no-untyped-def]
    return aws.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="lambda_function.handler",
        Code={"ZipFile": lambda_zip(generation)},
        **fields,
    )


def _invoke(aws, name: str, **kwargs) -> tuple[dict, str]:  # type: ignore[no-untyped-def]
    response = aws.invoke(FunctionName=name, Payload=b"{}", **kwargs)
    return json.loads(response["Payload"].read()), response["ExecutedVersion"]


def test_the_whole_rollout_with_boto3(aws, server):
    created = _create(
        aws, "shop", MemorySize=256, Timeout=5, Environment={"Variables": {"COLOUR": "red"}}
    )
    assert (created["Version"], created["Handler"], created["Role"]) == (
        "$LATEST",
        "lambda_function.handler",
        ROLE,
    )
    assert (created["MemorySize"], created["Timeout"], created["Runtime"]) == (256, 5, "python3.11")
    aws.get_waiter("function_active_v2").wait(FunctionName="shop")
    body, _ = _invoke(aws, "shop", LogType="Tail")
    assert body == {"generation": 1, "version": "$LATEST", "memory": "256", "colour": "red"}
    assert aws.invoke(FunctionName="shop", InvocationType="DryRun")["StatusCode"] == 204

    one = aws.publish_version(FunctionName="shop", Description="first")
    assert (one["Version"], one["Description"]) == ("1", "first")
    alias = aws.create_alias(FunctionName="shop", Name="live", FunctionVersion="1")
    assert alias["AliasArn"].endswith(":function:shop:live")

    aws.update_function_code(FunctionName="shop", ZipFile=lambda_zip(2))
    aws.get_waiter("function_updated_v2").wait(FunctionName="shop")
    assert _invoke(aws, "shop")[0]["generation"] == 2
    assert _invoke(aws, "shop:live")[0]["generation"] == 1  # the alias did not move
    two = aws.publish_version(
        FunctionName="shop",
        CodeSha256=aws.get_function_configuration(FunctionName="shop")["CodeSha256"],
    )
    assert two["Version"] == "2"

    canary = aws.update_alias(
        FunctionName="shop",
        Name="live",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    assert canary["FunctionVersion"] == "1"
    assert canary["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    seen = collections.Counter(_invoke(aws, "shop", Qualifier="live")[1] for _ in range(400))
    assert abs(seen["2"] / 400 - 0.1) <= 0.05, seen

    shifted = aws.update_alias(
        FunctionName="shop", Name="live", FunctionVersion="2", RoutingConfig={}
    )
    assert shifted["FunctionVersion"] == "2" and "RoutingConfig" not in shifted
    assert _invoke(aws, "shop:live") == (
        {"generation": 2, "version": "2", "memory": "256", "colour": "red"},
        "2",
    )
    # A rollback (the native API's; Lambda has none): back to 1 with its 10% canary.
    back = server.http("POST", "/v1/functions/shop/aliases/live/rollback").json()
    assert back["version"] == "1" and back["weights"] == {"2": 0.1}
    assert aws.get_alias(FunctionName="shop", Name="live")["FunctionVersion"] == "1"

    versions = aws.list_versions_by_function(FunctionName="shop")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    aliases = aws.list_aliases(FunctionName="shop", FunctionVersion="2")["Aliases"]
    assert [a["Name"] for a in aliases] == ["live"]
    aws.delete_alias(FunctionName="shop", Name="live")
    aws.delete_function(FunctionName="shop", Qualifier="1")
    assert [
        v["Version"] for v in aws.list_versions_by_function(FunctionName="shop")["Versions"]
    ] == [
        "$LATEST",
        "2",
    ]
    aws.delete_function(FunctionName="shop")
    with pytest.raises(aws.exceptions.ResourceNotFoundException):
        aws.get_function(FunctionName="shop")


def test_get_function_links_to_the_code_as_a_zip_without_a_key(aws):
    _create(aws, "linked", generation=7)
    got = aws.get_function(FunctionName="linked")
    assert got["Configuration"]["State"] == "Active"
    location = got["Code"]["Location"]
    download = httpx.get(location, timeout=30)
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert "GENERATION = 7" in archive.read("lambda_function.py").decode()
    tampered = location.replace("signature=", "signature=0")
    assert httpx.get(tampered, timeout=30).status_code == 403
    aws.delete_function(FunctionName="linked")


def test_update_configuration_keeps_the_code_and_create_publish_gives_version_1(aws):
    created = _create(aws, "configured", Publish=True)
    assert created["Version"] == "1"
    updated = aws.update_function_configuration(
        FunctionName="configured", MemorySize=1024, Environment={"Variables": {"COLOUR": "blue"}}
    )
    assert updated["MemorySize"] == 1024 and updated["RevisionId"] != created["RevisionId"]
    assert _invoke(aws, "configured")[0] == {
        "generation": 1,
        "version": "$LATEST",
        "memory": "1024",
        "colour": "blue",
    }
    assert _invoke(aws, "configured:1")[0]["memory"] == "128"  # Lambda's default, frozen in 1
    with pytest.raises(aws.exceptions.PreconditionFailedException):
        aws.update_function_configuration(
            FunctionName="configured", Timeout=9, RevisionId=created["RevisionId"]
        )
    aws.delete_function(FunctionName="configured")


def test_the_zips_own_mlambda_toml_sets_what_lambda_has_no_field_for(aws, server):
    toml = '[function]\nname = "ignored"\nhandler = "x:y"\nconcurrency = 3\n'
    aws.create_function(
        FunctionName="tuned",
        Runtime="python3.11",
        Role=ROLE,
        Handler="lambda_function.handler",
        Code={"ZipFile": lambda_zip(1, {"mlambda.toml": toml})},
    )
    config = server.http("GET", "/v1/functions/tuned").json()["config"]
    assert (config["concurrency"], config["handler"]) == (3, "lambda_function:handler")
    aws.delete_function(FunctionName="tuned")


def test_list_functions_pages_with_a_marker(aws):
    for i in range(5):
        _create(aws, f"paged-{i}")
    names: list[str] = []
    marker = None
    while True:
        kwargs = {"MaxItems": 2, **({"Marker": marker} if marker else {})}
        reply = aws.list_functions(**kwargs)
        names += [f["FunctionName"] for f in reply["Functions"]]
        marker = reply.get("NextMarker")
        if not marker:
            break
    assert [n for n in names if n.startswith("paged-")] == [f"paged-{i}" for i in range(5)]
    paginated = aws.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 3})
    assert (
        sum(1 for p in paginated for f in p["Functions"] if f["FunctionName"].startswith("paged-"))
        == 5
    )
    for i in range(5):
        aws.delete_function(FunctionName=f"paged-{i}")


def test_function_url_config_through_the_lambda_api(aws, server):
    _create(aws, "webby")
    with pytest.raises(aws.exceptions.ResourceNotFoundException):
        aws.get_function_url_config(FunctionName="webby")
    made = aws.create_function_url_config(FunctionName="webby", AuthType="NONE")
    assert made["FunctionUrl"] == f"{server.url}/fn/webby/"
    public = httpx.get(made["FunctionUrl"], timeout=30)
    assert public.status_code == 200 and public.json()["generation"] == 1
    with pytest.raises(aws.exceptions.ResourceConflictException):
        aws.create_function_url_config(FunctionName="webby", AuthType="NONE")
    aws.update_function_url_config(FunctionName="webby", AuthType="AWS_IAM")
    assert httpx.get(made["FunctionUrl"], timeout=30).status_code == 401
    aws.delete_function_url_config(FunctionName="webby")
    with pytest.raises(aws.exceptions.ResourceNotFoundException):
        aws.get_function_url_config(FunctionName="webby")
    aws.delete_function(FunctionName="webby")


def test_account_settings(aws):
    settings = aws.get_account_settings()
    assert settings["AccountLimit"]["ConcurrentExecutions"] > 0
    assert settings["AccountUsage"]["FunctionCount"] >= 0


NOT_FOUND, CONFLICT = "ResourceNotFoundException", "ResourceConflictException"
INVALID, PRECONDITION = "InvalidParameterValueException", "PreconditionFailedException"
DUP = {"FunctionName": "dup"}
BAD = {"FunctionName": "bad"}


@pytest.mark.parametrize(
    ("call", "kwargs", "error"),
    [
        ("get_function", {"FunctionName": "nobody"}, NOT_FOUND),
        ("get_function", {**DUP, "Qualifier": "9"}, NOT_FOUND),
        ("create_function", DUP, CONFLICT),
        ("create_function", {**BAD, "Handler": "nodot"}, INVALID),
        ("create_function", {**BAD, "Runtime": "nodejs20.x"}, INVALID),
        ("create_function", {**BAD, "Code": {"ZipFile": b"not a zip"}}, INVALID),
        ("create_function", {**BAD, "Code": {"S3Bucket": "code-bucket", "S3Key": "k"}}, INVALID),
        ("create_alias", {**DUP, "Name": "a", "FunctionVersion": "9"}, NOT_FOUND),
        ("create_alias", {**DUP, "Name": "7", "FunctionVersion": "$LATEST"}, INVALID),
        ("get_alias", {**DUP, "Name": "nope"}, NOT_FOUND),
        ("delete_function", {**DUP, "Qualifier": "$LATEST"}, INVALID),
        ("publish_version", {**DUP, "CodeSha256": "wrong"}, INVALID),
        ("publish_version", {**DUP, "RevisionId": "wrong"}, PRECONDITION),
        ("get_policy", DUP, "UnknownOperationException"),
    ],
)
def test_each_refusal_is_the_botocore_exception_lambda_raises(aws, call, kwargs, error):
    try:
        aws.get_function(FunctionName="dup")
    except aws.exceptions.ResourceNotFoundException:
        _create(aws, "dup")
    if call == "create_function":
        kwargs = {
            "Runtime": "python3.11",
            "Role": ROLE,
            "Handler": "lambda_function.handler",
            "Code": {"ZipFile": lambda_zip(1)},
            **kwargs,
        }
    before = aws.get_function_configuration(FunctionName="dup")["RevisionId"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        getattr(aws, call)(**kwargs)
    assert caught.value.response["Error"]["Code"] == error, caught.value.response
    assert aws.get_function_configuration(FunctionName="dup")["RevisionId"] == before
    with pytest.raises(aws.exceptions.ResourceNotFoundException):
        aws.get_function(FunctionName="bad")


def test_a_scoped_key_creates_only_the_functions_its_pattern_names(aws, server):
    made = server.cli(
        "keys", "create", "team", "--scope", "deploy:team-*", "--scope", "read", "--json"
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    team = lambda_client(server, secret=key["secretAccessKey"], key_id=key["id"])
    _create(team, "team-a")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _create(team, "other-a")
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "other-a" in caught.value.response["Error"]["Message"]
    with pytest.raises(aws.exceptions.ResourceNotFoundException):
        aws.get_function(FunctionName="other-a")
    reader = json.loads(server.cli("keys", "create", "ro", "--scope", "read", "--json").stdout)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        _create(lambda_client(server, reader["secretAccessKey"], reader["id"]), "team-b")
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    entries = server.http("GET", "/v1/audit", params={"action": "function.create"}).json()
    outcomes = {(e["target"], e["outcome"]) for e in entries["entries"]}
    assert {("team-a", "ok"), ("other-a", "failed")} <= outcomes
    aws.delete_function(FunctionName="team-a")


def _cli(server: Server, tmp_path, *args: str) -> dict:  # type: ignore[no-untyped-def]
    done = aws_cli(server, *args, cwd=tmp_path)
    assert done.returncode == 0, (args, done.stderr)
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_the_aws_cli_rolls_a_function_out_and_back(server, tmp_path):
    """The rollout as a script written for Lambda runs it, step by step, with `aws lambda`."""
    (tmp_path / "v5.zip").write_bytes(lambda_zip(5))
    (tmp_path / "v6.zip").write_bytes(lambda_zip(6))
    fn = ("--function-name", "cli-fn")
    _cli(server, tmp_path, "create-function", *fn, "--runtime", "python3.11", "--role", ROLE,
         "--handler", "lambda_function.handler", "--zip-file", "fileb://v5.zip")  # fmt: skip
    _cli(server, tmp_path, "wait", "function-active-v2", *fn)
    tail = _cli(server, tmp_path, "invoke", *fn, "--log-type", "Tail", "out.json")
    assert tail["StatusCode"] == 200 and tail["ExecutedVersion"] == "$LATEST"
    assert "REPORT RequestId:" in base64.b64decode(tail["LogResult"]).decode()
    assert json.loads((tmp_path / "out.json").read_text())["generation"] == 5
    event = _cli(server, tmp_path, "invoke", *fn, "--invocation-type", "Event", "event.json")
    assert event["StatusCode"] == 202
    dry = _cli(server, tmp_path, "invoke", *fn, "--invocation-type", "DryRun", "dry.json")
    assert dry["StatusCode"] == 204

    assert _cli(server, tmp_path, "publish-version", *fn)["Version"] == "1"
    _cli(server, tmp_path, "create-alias", *fn, "--name", "live", "--function-version", "1")
    _cli(server, tmp_path, "update-function-code", *fn, "--zip-file", "fileb://v6.zip")
    _cli(server, tmp_path, "wait", "function-updated-v2", *fn)
    assert _cli(server, tmp_path, "publish-version", *fn)["Version"] == "2"
    canary = _cli(server, tmp_path, "update-alias", *fn, "--name", "live",
                  "--routing-config", "AdditionalVersionWeights={2=0.1}")  # fmt: skip
    assert canary["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    shifted = _cli(server, tmp_path, "update-alias", *fn, "--name", "live",
                   "--function-version", "2", "--routing-config", "{}")  # fmt: skip
    assert shifted["FunctionVersion"] == "2"
    _cli(server, tmp_path, "invoke", *fn, "--qualifier", "live", "out.json")
    assert json.loads((tmp_path / "out.json").read_text())["version"] == "2"
    assert server.cli("rollback", "cli-fn", "live").returncode == 0  # Lambda has no rollback
    back = _cli(server, tmp_path, "get-alias", *fn, "--name", "live")
    assert (back["FunctionVersion"], back["RoutingConfig"]) == (
        "1",
        {"AdditionalVersionWeights": {"2": 0.1}},
    )

    reserved = _cli(server, tmp_path, "put-function-concurrency", *fn,
                    "--reserved-concurrent-executions", "3")  # fmt: skip
    assert reserved == {"ReservedConcurrentExecutions": 3}
    assert _cli(server, tmp_path, "get-function-concurrency", *fn) == reserved
    provisioned = _cli(
        server, tmp_path, "put-provisioned-concurrency-config", *fn, "--qualifier", "live",
        "--provisioned-concurrent-executions", "1",
    )  # fmt: skip
    assert provisioned["RequestedProvisionedConcurrentExecutions"] == 1
    _cli(server, tmp_path, "delete-provisioned-concurrency-config", *fn, "--qualifier", "live")
    _cli(server, tmp_path, "delete-function-concurrency", *fn)

    listed = _cli(server, tmp_path, "list-functions")
    assert "cli-fn" in [f["FunctionName"] for f in listed["Functions"]]
    missing = aws_cli(server, "get-alias", *fn, "--name", "x", cwd=tmp_path)
    assert missing.returncode != 0 and "(ResourceNotFoundException)" in missing.stderr
    _cli(server, tmp_path, "delete-alias", *fn, "--name", "live")
    _cli(server, tmp_path, "delete-function", *fn)
    gone = aws_cli(server, "get-function", *fn, cwd=tmp_path)
    assert gone.returncode != 0 and "(ResourceNotFoundException)" in gone.stderr


def test_a_zip_file_blob_is_base64_on_the_wire(server):
    """What botocore sends, made by hand: Code.ZipFile is base64 in the JSON body."""
    body = {
        "FunctionName": "wire",
        "Role": ROLE,
        "Runtime": "python3.11",
        "Handler": "lambda_function.handler",
        "Code": {"ZipFile": base64.b64encode(lambda_zip(3)).decode()},
    }
    response = server.http("POST", "/2015-03-31/functions", json=body)
    assert response.status_code == 201, response.text
    assert server.http("DELETE", "/2015-03-31/functions/wire").status_code == 204


SLOW = """
import time


def handler(event, context):
    print("RAN", context.aws_request_id)
    time.sleep(event["sleep"])
    return {"slept": event["sleep"]}
"""


def test_a_sync_call_botocore_retries_after_its_read_timeout_runs_the_handler_once(aws, server):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("slow.py", SLOW)
    aws.create_function(
        FunctionName="slow",
        Runtime="python3.11",
        Role=ROLE,
        Handler="slow.handler",
        Timeout=30,
        Code={"ZipFile": out.getvalue()},
    )
    import boto3
    import botocore.config

    impatient = boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="mlambda",
        aws_secret_access_key=server.key,
        config=botocore.config.Config(
            read_timeout=1, retries={"mode": "standard", "max_attempts": 5}
        ),
    )
    reply = impatient.invoke(FunctionName="slow", Payload=json.dumps({"sleep": 2.5}))
    assert json.loads(reply["Payload"].read()) == {"slept": 2.5}
    assert reply["ResponseMetadata"]["RetryAttempts"] >= 1
    logs = server.http("GET", "/v1/functions/slow/logs", params={"tail": "100"}).text
    assert logs.count("RAN ") == 1, logs
    assert logs.count("START RequestId") == 1
    aws.delete_function(FunctionName="slow")


def test_a_presigned_url_opens_a_call_without_a_body_until_it_expires(aws, server):
    _create(aws, "presigned")
    url = aws.generate_presigned_url(
        "get_function_configuration", Params={"FunctionName": "presigned"}, ExpiresIn=60
    )
    answer = httpx.get(url, timeout=30)
    assert answer.status_code == 200 and answer.json()["FunctionName"] == "presigned"
    other = url.replace("functions/presigned", "functions/dup")
    refused = httpx.get(other, timeout=30)
    assert refused.status_code == 403
    assert refused.json()["errorType"] == "InvalidSignatureException"
    invoke = aws.generate_presigned_url(
        "invoke", Params={"FunctionName": "presigned"}, ExpiresIn=60, HttpMethod="POST"
    )
    with_body = httpx.post(invoke, content=b'{"a": 1}', timeout=30)
    assert with_body.status_code == 403 and "signs no body" in with_body.json()["message"]
    aws.delete_function(FunctionName="presigned")
