"""Custom runtimes (``runtime = "provided"``): the bundle's bootstrap serves the calls through the
Lambda Runtime API its own instance serves, as a Lambda container image built on the real
``awslambdaric`` does, or a hand-written bootstrap speaking HTTP with urllib."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import os
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from mlambda import bundle
from tests.system.conftest import Server, lambda_client

pytest.importorskip("awslambdaric")

PYTHON = os.path.abspath(sys.executable)  # no "..": the sandbox's view binds real paths
# The Runtime Interface Client Lambda's container images run, on the platform's Python (the
# sandbox shows that interpreter and its packages to the function).
RIC_BOOTSTRAP = f'#!/bin/sh\nexec {PYTHON} -m awslambdaric "$_HANDLER"\n'

APP = """
import os


def handler(event, context):
    print("handling", event)
    if event.get("fail"):
        raise ValueError(f"bad input {event['fail']}")
    return {
        "echo": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "handler": os.environ["_HANDLER"],
        "task_root": os.environ["LAMBDA_TASK_ROOT"] == os.getcwd(),
    }
"""

# A bootstrap written by hand: Python's urllib, nothing of Lambda's. MODE comes from
# [function.env]: how this one misbehaves.
HANDMADE = f"""#!{PYTHON}
import json, os, subprocess, sys, time, urllib.error, urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
MODE = os.environ.get("MODE", "echo")


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(API + path, data=body, method=method, headers=headers or {{}})
    try:
        with urllib.request.urlopen(request) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def outcome(method, path, body=None):
    status, _, reply = call(method, path, body)
    return [status, json.loads(reply)]


if MODE == "init_error":
    print("no configuration: giving up")
    call("POST", "/init/error", b"configuration missing",
         {{"Lambda-Runtime-Function-Error-Type": "Runtime.ConfigMissing"}})
    sys.exit(1)
while True:
    status, headers, body = call("GET", "/invocation/next")
    request_id = headers["Lambda-Runtime-Aws-Request-Id"]
    event = json.loads(body)
    if MODE == "exit":
        print("leaving mid-call")
        sys.exit(3)
    if MODE == "hang":
        # A child of its own too: the instance's kill must take the whole tree.
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", __file__])
        time.sleep(600)
    if event.get("probe"):
        answer = {{
            "wrong_id": outcome("POST", "/invocation/not-" + request_id + "/response", b"{{}}"),
            "unknown": outcome("GET", "/invocation/elsewhere"),
            "late_init_error": outcome("POST", "/init/error", b"{{}}"),
            "next_before_answer": outcome("GET", "/invocation/next"),
            "headers": {{k: v for k, v in headers.items() if k.startswith("Lambda-Runtime")}},
        }}
        call("POST", "/invocation/" + request_id + "/response", json.dumps(answer).encode())
    elif event.get("big"):
        status = outcome("POST", "/invocation/" + request_id + "/response",
                         b'"' + b"x" * event["big"] + b'"')
        print("big response:", status)
    elif event.get("error"):
        call("POST", "/invocation/" + request_id + "/error",
             json.dumps({{"errorMessage": "no", "errorType": "Custom.Refused",
                          "stackTrace": ["here"]}}).encode())
    else:
        print("echo", event)
        call("POST", "/invocation/" + request_id + "/response", body)
        if MODE == "once":
            sys.exit(0)
"""


def provided_function(
    root: Path,
    name: str,
    bootstrap: str | None,
    env: dict[str, str] | None = None,
    **config: object,
) -> Path:
    """A function directory with ``bootstrap`` (None: without one) and app.py."""
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "app.py").write_text(textwrap.dedent(APP))
    if bootstrap is not None:
        (directory / "bootstrap").write_text(bootstrap)
        (directory / "bootstrap").chmod(0o755)
    config.setdefault("runtime", "provided.al2023")
    lines = ["[function]", f'name = "{name}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in config.items()]
    lines += ["[function.env]", *(f"{k} = {json.dumps(v)}" for k, v in (env or {}).items())]
    (directory / "mlambda.toml").write_text("\n".join(lines) + "\n")
    return directory


def ric_zip() -> bytes:
    """A Lambda zip as one is made with Python's zipfile: no unix modes on its members."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bootstrap", RIC_BOOTSTRAP)
        archive.writestr("app.py", textwrap.dedent(APP))
    return out.getvalue()


@pytest.fixture(scope="module")
def served(shared_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Server:
    root = tmp_path_factory.mktemp("provided")
    for name, mode, extra in (
        ("handmade", "echo", {}),
        ("initfails", "init_error", {}),
        ("quits", "exit", {}),
        ("hangs", "hang", {"timeout_s": 1}),
        ("once", "once", {}),
    ):
        directory = provided_function(
            root, name, HANDMADE, handler="unused", env={"MODE": mode}, **extra
        )
        shared_server.deploy(directory)
    isolated = provided_function(
        root, "isolated", RIC_BOOTSTRAP, handler="app.handler", network="none"
    )
    shared_server.deploy(isolated)
    return shared_server


def _invoke(server: Server, name: str, event: object, **kwargs: object) -> dict:
    response = lambda_client(server).invoke(
        FunctionName=name, Payload=json.dumps(event).encode(), **kwargs
    )
    response["body"] = json.load(response["Payload"])
    return response  # type: ignore[no-any-return]


def test_an_awslambdaric_function_made_with_boto3_answers_with_its_handlers_result(served):
    aws = lambda_client(served)
    aws.create_function(
        FunctionName="ric",
        Runtime="provided.al2023",
        Role="arn:aws:iam::000000000000:role/r",
        Handler="app.handler",
        Code={"ZipFile": ric_zip()},
        Timeout=7,
        MemorySize=256,
    )
    configuration = aws.get_function_configuration(FunctionName="ric")
    assert (configuration["Runtime"], configuration["Handler"]) == (
        "provided.al2023",
        "app.handler",
    )
    response = _invoke(served, "ric", {"n": 1}, LogType="Tail")
    assert "FunctionError" not in response, response["body"]
    out = response["body"]
    log = base64.b64decode(response["LogResult"]).decode()
    assert out["echo"] == {"n": 1}
    assert f"START RequestId: {out['request_id']} " in log
    assert "handling {'n': 1}" in log and "REPORT RequestId:" in log
    assert out["function_name"] == "ric"
    assert out["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:ric"
    assert 5000 < out["remaining_ms"] <= 7000
    assert (out["memory"], out["handler"], out["task_root"]) == ("256", "app.handler", True)
    again = _invoke(served, "ric", {"n": 2}, Qualifier="$LATEST")["body"]
    assert again["arn"].endswith(":function:ric:$LATEST") and again["echo"] == {"n": 2}


def test_a_handler_error_comes_back_unhandled_in_lambdas_shape(served):
    response = _invoke(served, "ric", {"fail": 7}, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    error = response["body"]
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "bad input 7")
    assert isinstance(error["stackTrace"], list) and 'raise ValueError(f"bad input' in "".join(
        error["stackTrace"]
    )
    log = base64.b64decode(response["LogResult"]).decode()
    assert "[ERROR] ValueError: bad input 7" in log and "handling {'fail': 7}" in log
    assert "FunctionError" not in _invoke(served, "ric", {"n": 3})  # the instance lives on


def test_a_bootstrap_in_a_network_namespace_of_its_own_reaches_its_runtime_api(served):
    response = _invoke(served, "isolated", {"n": 4})
    assert "FunctionError" not in response and response["body"]["echo"] == {"n": 4}


def test_a_handmade_bootstrap_gets_lambdas_headers_and_refusals(served):
    out = _invoke(served, "handmade", {"probe": True})["body"]
    assert out["wrong_id"] == [
        400,
        {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"},
    ]
    assert out["unknown"][0] == 404 and out["unknown"][1]["errorType"] == "NotFound"
    assert out["late_init_error"][0] == 403
    assert out["next_before_answer"][0] == 403
    headers = out["headers"]
    assert headers["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:handmade")
    assert abs(int(headers["Lambda-Runtime-Deadline-Ms"]) - time.time() * 1000 - 30_000) < 5000
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    assert headers["Lambda-Runtime-Aws-Request-Id"]
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    echoed = _invoke(served, "handmade", {"probe": True}, ClientContext=context)["body"]
    assert json.loads(echoed["headers"]["Lambda-Runtime-Client-Context"])["custom"] == {"k": "v"}


def test_an_error_posted_by_a_bootstrap_and_a_response_too_large_fail_the_call(served):
    refused = _invoke(served, "handmade", {"error": True})
    assert refused["FunctionError"] == "Unhandled"
    assert refused["body"] == {
        "errorMessage": "no",
        "errorType": "Custom.Refused",
        "stackTrace": ["here"],
    }
    # The bootstrap hears 413; the call ends there, failed as on Lambda.
    big = _invoke(served, "handmade", {"big": 7 * 1024 * 1024})
    assert big["body"]["errorType"] == "Function.ResponseSizeTooLarge", big["body"]
    assert _invoke(served, "handmade", {"n": 5})["body"] == {"n": 5}  # still serving


def test_an_init_error_posted_by_the_bootstrap_fails_the_call_with_it(served):
    response = _invoke(served, "initfails", {})
    assert response["FunctionError"] == "Unhandled"
    assert response["body"]["errorType"] == "Runtime.ConfigMissing"
    assert response["body"]["errorMessage"] == "configuration missing"


def test_a_bootstrap_that_exits_mid_call_is_a_runtime_exit_error(served):
    error = _invoke(served, "quits", {})["body"]
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Runtime exited with error: exit status 3")


def test_a_bootstrap_that_exits_between_calls_gives_way_to_a_new_instance(served):
    assert _invoke(served, "once", {"n": 1})["body"] == {"n": 1}
    time.sleep(0.5)  # its instance ends with it
    assert _invoke(served, "once", {"n": 2})["body"] == {"n": 2}


def _processes_of(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_a_hanging_bootstrap_times_out_and_leaves_no_process_behind(served):
    digest = served.client.get("hangs")["digest"]
    marker = digest.replace(":", "-") + "/bootstrap"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = pool.submit(_invoke, served, "hangs", {})
        while len(_processes_of(marker)) < 2 and not call.done():
            time.sleep(0.02)
        assert len(_processes_of(marker)) == 2  # the bootstrap and the child it started
        assert call.result()["body"]["errorType"] == "Sandbox.Timedout"
    deadline = time.monotonic() + 10
    while _processes_of(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_of(marker) == []


@pytest.mark.parametrize(
    ("bootstrap", "config", "message"),
    [
        (None, {}, "has no 'bootstrap' file at its root"),
        (RIC_BOOTSTRAP, {"concurrency": 2}, "function.concurrency must be 1"),
        (RIC_BOOTSTRAP, {"runtime": "provided.al2022"}, "did you mean 'provided.al2023'"),
    ],
)
def test_a_provided_function_that_cannot_run_is_refused_at_deploy(
    served, tmp_path, bootstrap, config, message
):
    directory = provided_function(tmp_path, "refused", bootstrap, handler="app.handler", **config)
    response = served.http(
        "PUT",
        "/v1/functions/refused",
        content=bundle.pack(directory),
        headers={"Content-Type": "application/gzip"},
    )
    assert response.status_code == 400
    assert message in response.json()["errorMessage"]


def test_the_lambda_api_refuses_a_provided_zip_without_bootstrap(served):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("app.py", APP)
    aws = lambda_client(served)
    with pytest.raises(aws.exceptions.InvalidParameterValueException, match="bootstrap"):
        aws.create_function(
            FunctionName="nobootstrap",
            Runtime="provided.al2",
            Role="arn:aws:iam::000000000000:role/r",
            Handler="app.handler",
            Code={"ZipFile": out.getvalue()},
        )
