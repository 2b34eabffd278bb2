"""Deploy a function and call it over HTTP and from the CLI."""

from __future__ import annotations

import json
import os
import time

ECHO = """
    import os

    def handler(event, context):
        return {
            "event": event,
            "pid": os.getpid(),
            "request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "arn": context.invoked_function_arn,
            "memory": context.memory_limit_in_mb,
            "log_group": context.log_group_name,
            "log_stream": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "greeting": os.environ.get("GREETING"),
            "lambda_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            "leaked_key": os.environ.get("MLAMBDA_API_KEY"),
            "cwd": os.getcwd(),
        }
"""


def test_deploy_with_the_cli_then_invoke_over_http_and_cli(server, make_function):
    directory = make_function("echo", ECHO, memory_mb=256, timeout_s=7, env={"GREETING": "hi"})

    deployed = server.cli("deploy", str(directory))
    assert deployed.returncode == 0, deployed.stderr
    assert "deployed echo $LATEST (sha256:" in deployed.stdout

    response = server.http("POST", "/v1/functions/echo/invoke", content=b'{"amount": 420.5}')
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["event"] == {"amount": 420.5}
    assert body["function_name"] == body["lambda_name"] == "echo"
    assert body["function_version"] == "$LATEST"
    assert body["arn"].startswith("arn:") and body["arn"].endswith(":function:echo")
    assert body["memory"] == "256"
    assert body["log_group"] == "/aws/lambda/echo"
    assert 0 < body["remaining_ms"] <= 7000
    assert body["greeting"] == "hi"
    assert body["leaked_key"] is None

    invoked = server.cli("invoke", "echo", "--data", '{"n": 1}')
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout)["event"] == {"n": 1}


def test_cli_invoke_reads_the_event_from_a_file_or_stdin(server, make_function, tmp_path):
    server.deploy(make_function("echo", ECHO))
    event = tmp_path / "event.json"
    event.write_text('{"from": "file"}')
    assert json.loads(server.cli("invoke", "echo", "--data", f"@{event}").stdout)["event"] == {
        "from": "file"
    }
    piped = server.cli("invoke", "echo", "--data", "-", input=b'{"from": "stdin"}')
    assert json.loads(piped.stdout)["event"] == {"from": "stdin"}
    empty = server.http("POST", "/v1/functions/echo/invoke")
    assert empty.json()["event"] == {}


def test_second_call_reuses_the_instance_and_reports_no_init_duration(server, make_function):
    server.deploy(make_function("echo", ECHO))
    first = server.client.invoke("echo", b"{}")
    second = server.client.invoke("echo", b"{}")
    assert json.loads(first)["pid"] == json.loads(second)["pid"]

    text = "".join(server.client.logs("echo"))
    reports = [line for line in text.splitlines() if "REPORT RequestId" in line]
    assert len(reports) == 2
    assert "Init Duration" in reports[0]
    assert "Init Duration" not in reports[1]


def test_deploying_unchanged_code_is_a_noop_and_says_so(server, make_function):
    directory = make_function("echo", ECHO)
    assert server.cli("deploy", str(directory)).returncode == 0
    again = server.cli("deploy", str(directory))
    assert again.returncode == 0
    assert "unchanged" in again.stdout


def test_redeploy_replaces_latest_and_the_old_instance_stops(server, make_function):
    directory = make_function(
        "version", "def handler(e, c):\n    import os\n    return [1, os.getpid()]\n"
    )
    server.deploy(directory)
    old_version, old_pid = json.loads(server.client.invoke("version", b"{}"))
    assert old_version == 1

    (directory / "app.py").write_text(
        "def handler(e, c):\n    import os\n    return [2, os.getpid()]\n"
    )
    reply = server.deploy(directory)
    assert reply["changed"] is True
    new_version, new_pid = json.loads(server.client.invoke("version", b"{}"))
    assert new_version == 2
    assert new_pid != old_pid
    assert _gone(old_pid, within=5)


def test_ls_show_rm_and_help(server, make_function):
    server.deploy(make_function("echo", ECHO, memory_mb=256))
    listing = server.cli("ls")
    assert listing.returncode == 0
    assert "echo" in listing.stdout and "256 MB" in listing.stdout

    shown = json.loads(server.cli("show", "echo").stdout)
    assert shown["name"] == "echo" and shown["config"]["memory_mb"] == 256

    removed = server.cli("rm", "echo")
    assert removed.returncode == 0 and "removed echo" in removed.stdout
    missing = server.cli("invoke", "echo")
    assert missing.returncode == 4
    assert "Function not found" in missing.stderr

    helped = server.cli("--help")
    assert helped.returncode == 0
    for command in ("serve", "deploy", "invoke", "ls", "show", "rm", "logs"):
        assert command in helped.stdout


def test_handler_written_for_lambda_runs_unchanged(server, make_function):
    code = """
        import json

        MODEL = {"weights": [0.5, 0.25]}  # loaded once, at init

        def lambda_handler(event, context):
            body = json.loads(event["body"]) if "body" in event else event
            score = sum(w * x for w, x in zip(MODEL["weights"], body["features"]))
            return {"statusCode": 200, "body": json.dumps({"score": score})}
    """
    server.deploy(make_function("scorer", code, handler="app:lambda_handler"))
    result = json.loads(server.client.invoke("scorer", b'{"features": [2, 4]}'))
    assert result == {"statusCode": 200, "body": json.dumps({"score": 2.0})}


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie still answers kill(0); its state in /proc says it is dead.
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] in ("Z", "X"):
                    return True
        except (FileNotFoundError, ProcessLookupError):  # it went while we looked
            return True
        time.sleep(0.05)
    return False
