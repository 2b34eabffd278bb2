"""Alarms as an operator uses them: an error-rate alarm fires once when a function starts
failing and resolves once when it stops, delivered to webhooks (CloudWatch's JSON and Slack's
form) and to a function; alarms kept as code in a file; the API's refusals."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.system.conftest import Server, free_port
from tests.system.test_async import _function, _Webhook

FLAKY = """
    def handler(event, context):
        if event.get("fail"):
            raise RuntimeError("asked to fail")
        return "ok"
"""
PAGER = """
    import json

    def handler(event, context):
        print("PAGED", json.dumps(event))
"""


def _calls(server: Server, seconds: float, fail: bool) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        server.http("POST", "/v1/functions/flaky/invoke", json={"fail": fail})
        time.sleep(0.05)


def _state(server: Server, name: str, wanted: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alarm = server.http("GET", f"/v1/alarms/{name}").json()
        if alarm["state"] == wanted:
            return alarm
        time.sleep(0.1)
    raise AssertionError(f"alarm {name} is {alarm['state']}, not {wanted}: {alarm['stateReason']}")


def test_an_error_rate_alarm_fires_once_and_resolves_once(tmp_path):
    hook, slack = _Webhook(), _Webhook()
    server = Server(tmp_path / "data").start()
    try:
        server.deploy(_function(tmp_path, "flaky", FLAKY))
        server.deploy(_function(tmp_path, "pager", PAGER))
        rule = {"function": "flaky", "metric": "ErrorRate", "statistic": "Average",
                "comparison": "GreaterThanThreshold", "threshold": 50, "period": 1,
                "evaluation_periods": 2, "datapoints_to_alarm": 2, "webhooks": [hook.url],
                "notify_function": "pager"}  # fmt: skip
        made = server.http("PUT", "/v1/alarms/flaky-errors", json=rule)
        assert made.status_code == 201, made.text
        assert made.json()["state"] == "INSUFFICIENT_DATA"
        assert made.json()["webhooks"] == ["http://127.0.0.1/…"]  # a webhook URL is a secret
        put = server.cli("alarms", "put", "flaky-slack", "--function", "flaky", "--metric",
                         "Errors", "--statistic", "Sum", "--comparison", "GreaterThanThreshold",
                         "--threshold", "0", "--period", "1", "--webhook", slack.url,
                         "--webhook-format", "slack")  # fmt: skip
        assert put.returncode == 0, put.stderr
        assert "Sum(Errors) > 0 for 1 of 1 x 1s" in put.stdout

        _calls(server, 3, fail=False)
        _state(server, "flaky-errors", "OK")
        _calls(server, 3, fail=True)
        _state(server, "flaky-errors", "ALARM")
        _calls(server, 3, fail=False)
        alarm = _state(server, "flaky-errors", "OK")

        received = hook.wait(2)
        time.sleep(2)  # nothing more comes
        states = [(body["OldStateValue"], body["NewStateValue"]) for body in hook.received]
        assert states == [("OK", "ALARM"), ("ALARM", "OK")]
        fired = received[0]
        assert fired["AlarmName"] == "flaky-errors"
        assert fired["Trigger"]["MetricName"] == "ErrorRate"
        assert fired["Trigger"]["Dimensions"] == [{"name": "FunctionName", "value": "flaky"}]
        assert "greater than the threshold (50" in fired["NewStateReason"]
        texts = [body["text"] for body in slack.wait(2)]
        assert any("ALARM" in text and "flaky-slack" in text for text in texts), texts

        changes = [(c["oldState"], c["newState"]) for c in alarm["history"]]
        assert changes[:3] == [("ALARM", "OK"), ("OK", "ALARM"), ("INSUFFICIENT_DATA", "OK")]
        deadline = time.monotonic() + 10
        paged = ""
        while "aws.cloudwatch" not in paged and time.monotonic() < deadline:
            paged = "".join(server.client.logs("pager", tail=200))
            time.sleep(0.2)
        assert '"alarmName": "flaky-errors"' in paged and '"value": "ALARM"' in paged

        listed = server.cli("alarms")
        assert "flaky-errors" in listed.stdout and "OK" in listed.stdout
        shown = server.cli("alarms", "show", "flaky-errors")
        assert "OK -> ALARM" in shown.stdout
        series = server.http(
            "GET", "/v1/functions/flaky/metrics",
            params={"metric": "Errors", "statistic": "Sum", "period": "1", "since": "1m"},
        ).json()  # fmt: skip
        assert sum(p["value"] or 0 for p in series["datapoints"]) >= 20
    finally:
        server.stop()
        hook.close()
        slack.close()


def test_alarms_from_a_file_are_put_in_place_and_the_api_refuses_what_is_wrong(tmp_path):
    alarms = tmp_path / "alarms.toml"
    alarms.write_text(
        '[[alarm]]\nname = "slow"\nfunction = "*"\nmetric = "Duration"\nstatistic = "p99"\n'
        'comparison = "GreaterThanThreshold"\nthreshold = 250\nperiod = 60\n'
        "evaluation_periods = 3\ndatapoints_to_alarm = 2\n"
    )
    server = Server(tmp_path / "data", "--alarms-file", str(alarms)).start()
    try:
        server.deploy(_function(tmp_path, "flaky", FLAKY))
        listed = server.http("GET", "/v1/alarms").json()["alarms"]
        assert [(a["name"], a["origin"], a["statistic"]) for a in listed] == [
            ("slow", "settings", "p99")
        ]
        refusals = [
            ("PUT", "/v1/alarms/bad", {"function": "flaky", "metric": "Errorz"}, 400, "Errors"),
            ("PUT", "/v1/alarms/bad", {"name": "other"}, 400, "names alarm 'other'"),
            ("GET", "/v1/alarms/ghost", None, 404, "no alarm 'ghost'"),
            ("DELETE", "/v1/alarms/ghost", None, 404, "no alarm 'ghost'"),
        ]
        for method, path, body, status, says in refusals:
            answer = server.http(method, path, json=body)
            assert answer.status_code == status, answer.text
            assert says in answer.json()["errorMessage"], answer.text
        key = server.client.create_key({"name": "k", "scopes": ["deploy:other", "read"]})
        rule = {"function": "flaky", "metric": "Errors", "statistic": "Sum",
                "comparison": "GreaterThanThreshold", "threshold": 1}  # fmt: skip
        denied = server.http(
            "PUT", "/v1/alarms/mine", json=rule,
            headers={"Authorization": f"Bearer {key['token']}"},
        )  # fmt: skip
        assert denied.status_code == 403, denied.text
        assert server.http("PUT", "/v1/alarms/mine", json=rule).status_code == 201
        assert server.http("PUT", "/v1/alarms/mine", json=rule).status_code == 200
        assert server.http("DELETE", "/v1/alarms/mine").status_code == 204
        bad = server.http("GET", "/v1/functions/flaky/metrics", params={"statistic": "p1000"})
        assert bad.status_code == 400
        assert server.http("GET", "/v1/functions/ghost/metrics").status_code == 404
    finally:
        server.stop()


def test_a_broken_alarms_file_stops_serve_with_the_reason(tmp_path):
    alarms = tmp_path / "alarms.toml"
    alarms.write_text('[[alarm]]\nname = "x"\nfunction = "f"\nmetric = "Latency"\n')
    command = [sys.executable, "-m", "mlambda", "serve", "--data-dir", str(tmp_path / "data"),
               "--port", str(free_port()), "--alarms-file", str(alarms)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "alarms file" in result.stderr and "Latency" in result.stderr, result.stderr
