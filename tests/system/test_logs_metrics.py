"""Logs in Lambda's format (START/END/REPORT around captured output) and Prometheus metrics."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

from tests.system.conftest import Server

CHATTY = """
    import logging, sys

    print("loading model")  # init output
    logger = logging.getLogger()
    logger.setLevel(logging.INFO)

    def handler(event, context):
        print("scoring", event.get("id"))
        print("warning on stderr", file=sys.stderr)
        logger.info("scored %s", event.get("id"))
        if event.get("fail"):
            raise RuntimeError("bad row")
        return "ok"
"""

REPORT = re.compile(
    r"REPORT RequestId: (\S+)\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: 256 MB\tMax Memory Used: \d+ MB\t"
    r"(Init Duration: \d+\.\d\d ms\tInit Breakdown: tier \w+, prepare [\d.]+ ms, "
    r"fork [\d.]+ ms, import [\d.]+ ms, init [\d.]+ ms\t)?"
)


def _logs(server, name: str) -> str:
    return "".join(server.client.logs(name, tail=1000))


def test_each_invocation_has_start_output_end_and_report(server, make_function):
    server.deploy(make_function("chatty", CHATTY, memory_mb=256))
    server.client.invoke("chatty", b'{"id": 1}')
    server.client.invoke("chatty", b'{"id": 2}')
    lines = [line.split(" ", 1)[1] for line in _logs(server, "chatty").splitlines()]

    assert "loading model" in lines
    starts = [i for i, line in enumerate(lines) if line.startswith("START RequestId:")]
    assert len(starts) == 2
    first = lines[starts[0] : starts[1]]
    request_id = first[0].split()[2]
    assert first[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert "scoring 1" in first
    assert "warning on stderr" in first
    assert any(line.startswith("[INFO]") and line.endswith("scored 1") for line in first)
    assert f"END RequestId: {request_id}" in first
    report = REPORT.fullmatch(first[-1])
    assert report and report.group(1) == request_id and report.group(2)
    second_report = REPORT.fullmatch(lines[-1])
    assert second_report and second_report.group(2) is None


def test_logs_select_an_invocation_a_text_or_an_age_and_ship_as_json(server, make_function):
    server.deploy(make_function("picky", CHATTY, memory_mb=256))
    for n in (1, 2, 3):
        server.client.invoke("picky", f'{{"id": {n}}}'.encode())
    lines = _logs(server, "picky").splitlines()
    at = next(i for i, line in enumerate(lines) if line.endswith(" scoring 2"))
    second = next(lines[i].split()[3] for i in range(at, -1, -1) if "START RequestId" in lines[i])
    block = server.cli("logs", "picky", "--request-id", second)
    assert block.returncode == 0, block.stderr
    texts = [line.split(" ", 1)[1] for line in block.stdout.splitlines()]
    assert texts[0].startswith(f"START RequestId: {second}") and texts[-1].startswith("REPORT")
    assert "scoring 2" in texts and "scoring 1" not in texts and "scoring 3" not in texts
    found = server.cli("logs", "picky", "--filter", "scoring 3").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in found] == ["scoring 3"]
    shipped = server.cli("logs", "picky", "--request-id", second, "--format", "json")
    records = [json.loads(line) for line in shipped.stdout.splitlines()]
    assert {r["requestId"] for r in records} == {second}
    assert any(r["message"] == "scoring 2" for r in records)
    time.sleep(1.1)
    assert server.cli("logs", "picky", "--since", "1s").stdout == ""
    refused = server.http("GET", "/v1/functions/picky/logs", params={"since": "soon"})
    assert refused.status_code == 400 and "since must be like" in refused.json()["errorMessage"]


def test_logs_follow_streams_new_invocations(server, make_function):
    server.deploy(make_function("chatty", CHATTY))
    env = {"MLAMBDA_URL": server.url, "MLAMBDA_DATA_DIR": str(server.data_dir), "PATH": ""}
    follower = subprocess.Popen(
        [sys.executable, "-m", "mlambda", "logs", "chatty", "--follow"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    with follower:
        time.sleep(1.0)
        server.client.invoke("chatty", b'{"id": "followed"}')
        assert follower.stdout is not None
        seen = ""
        deadline = time.monotonic() + 10
        while "REPORT" not in seen and time.monotonic() < deadline:
            seen += follower.stdout.readline()
        follower.terminate()
    assert "scoring followed" in seen and "REPORT RequestId" in seen


def test_metrics_count_invocations_errors_and_cold_starts(server, make_function):
    server.deploy(make_function("chatty", CHATTY))
    server.client.invoke("chatty", b"{}")
    server.http("POST", "/v1/functions/chatty/invoke", json={"fail": True})
    text = server.http("GET", "/metrics").text
    assert (
        'mlambda_invocations_total{function="chatty",outcome="success",version="$LATEST"} 1.0'
        in text
    )
    assert (
        'mlambda_invocations_total{function="chatty",outcome="error",version="$LATEST"} 1.0' in text
    )
    assert (
        'mlambda_errors_total{error_type="RuntimeError",function="chatty",version="$LATEST"} 1.0'
        in text
    )
    assert re.search(
        r'mlambda_cold_starts_total\{function="chatty",tier="(process|base|runtime|template)",'
        r'version="\$LATEST"\} 1.0',
        text,
    )
    assert 'mlambda_predictions_total{function="chatty",version="$LATEST"} 1.0' in text
    assert 'mlambda_cpu_seconds_total{function="chatty",version="$LATEST"}' in text
    assert 'mlambda_duration_seconds_count{function="chatty",version="$LATEST"} 2.0' in text
    assert 'mlambda_init_duration_seconds_count{function="chatty",version="$LATEST"} 1.0' in text
    assert 'mlambda_instances{function="chatty",state="idle",version="$LATEST"} 1.0' in text


def test_logs_of_an_unknown_function_is_404(server):
    result = server.cli("logs", "ghost")
    assert result.returncode == 4
    assert "Function not found" in result.stderr


def test_serve_writes_its_own_log_as_json_lines_when_asked(tmp_path, make_function):
    server = Server(
        tmp_path / "data", "--log-format", "json", "--access-log", "--log-level", "info"
    )
    server.start()
    try:
        server.deploy(make_function("failing", CHATTY))
        server.http("POST", "/v1/functions/failing/invoke", json={"fail": True})
    finally:
        server.stop()
    records = [json.loads(line) for line in server.log.read_text().splitlines() if line[:1] == "{"]
    failed = [r for r in records if r["logger"] == "mlambda.events" and "failed" in r["message"]]
    assert failed and failed[0]["level"] == "WARNING" and "bad row" in failed[0]["message"]
    assert failed[0]["time"].endswith("Z")
    assert any(r["logger"] == "uvicorn.access" and "/invoke" in r["message"] for r in records)
