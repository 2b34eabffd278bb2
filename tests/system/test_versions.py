"""Versions and aliases: publish freezes $LATEST, an alias routes calls (with a weighted split for
a canary), a rollback undoes its last move; through the native API, the CLI, boto3 and URLs."""

from __future__ import annotations

import collections
import json
import signal

import httpx
import pytest

from tests.conftest import write_function
from tests.system.conftest import Server, lambda_client

CODE = """
    import os

    GENERATION = {generation}

    def handler(event, context):
        if "rawPath" in event:
            return {{"statusCode": 200, "body": f"generation {{GENERATION}}"}}
        return {{
            "generation": GENERATION,
            "version": context.function_version,
            "env_version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
            "arn": context.invoked_function_arn,
        }}
"""


def _deploy(server: Server, root, generation: int, name: str = "shop") -> dict:  # type: ignore[no-untyped-def]
    directory = write_function(root, name, CODE.format(generation=generation))
    with (directory / "mlambda.toml").open("a") as toml:
        toml.write('[function.url]\nauth_type = "NONE"\n')
    return server.deploy(directory)


def _call(server: Server, target: str) -> tuple[dict, str]:
    response = server.http("POST", f"/v1/functions/{target}/invoke", json={})
    assert response.status_code == 200, response.text
    return response.json(), response.headers["X-Amz-Executed-Version"]


@pytest.fixture(scope="module")
def shop(shared_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    _deploy(shared_server, root, 1)
    first = shared_server.http("POST", "/v1/functions/shop/versions", json={"description": "one"})
    assert first.status_code == 201, first.text
    _deploy(shared_server, root, 2)
    second = shared_server.http("POST", "/v1/functions/shop/versions", json={})
    assert second.status_code == 201, second.text
    _deploy(shared_server, root, 3)  # $LATEST moves on; versions 1 and 2 stay as they were
    shared_server.root = root  # type: ignore[attr-defined]
    return shared_server


def test_each_version_runs_its_own_code_and_knows_its_version(shop):
    for target, generation, version in (
        ("shop:1", 1, "1"),
        ("shop:2", 2, "2"),
        ("shop", 3, "$LATEST"),
    ):
        body, executed = _call(shop, target)
        assert (body["generation"], executed) == (generation, version)
        assert body["version"] == body["env_version"] == version
    body, _ = _call(shop, "shop:2")
    assert body["arn"].endswith(":function:shop:2")
    by_query = shop.http("POST", "/v1/functions/shop/invoke", params={"qualifier": "1"}, json={})
    assert by_query.json()["generation"] == 1 and by_query.headers["X-Amz-Executed-Version"] == "1"


def test_publishing_an_unchanged_latest_returns_the_last_version(shop):
    _deploy(shop, shop.root, 2)  # the code of version 2 again: nothing new to publish
    same = shop.http("POST", "/v1/functions/shop/versions", json={})
    assert same.status_code == 200 and same.json()["version"] == "2", same.text
    _deploy(shop, shop.root, 4)
    first = shop.http("POST", "/v1/functions/shop/versions", json={})
    again = shop.http("POST", "/v1/functions/shop/versions", json={})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["version"] == first.json()["version"] and not again.json()["created"]
    _deploy(shop, shop.root, 3)
    listed = [
        v["version"] for v in shop.http("GET", "/v1/functions/shop/versions").json()["versions"]
    ]
    assert listed == ["$LATEST", "1", "2", "3"]


def test_a_weighted_alias_splits_calls_and_every_answer_names_its_version(shop):
    put = shop.http(
        "PUT", "/v1/functions/shop/aliases/canary", json={"version": "1", "weights": {"2": 0.1}}
    )
    assert put.status_code == 201, put.text
    counts: collections.Counter[str] = collections.Counter()
    for _ in range(400):
        body, executed = _call(shop, "shop:canary")
        assert body["version"] == executed
        assert body["arn"].endswith(":function:shop:canary")
        counts[executed] += 1
    assert set(counts) == {"1", "2"}
    assert abs(counts["2"] / 400 - 0.1) <= 0.05, counts


def test_boto3_invokes_an_alias_by_qualifier_or_by_name(shop):
    shop.http("PUT", "/v1/functions/shop/aliases/live", json={"version": "2"})
    client = lambda_client(shop)
    for kwargs in ({"FunctionName": "shop", "Qualifier": "live"}, {"FunctionName": "shop:live"}):
        response = client.invoke(Payload=b"{}", **kwargs)
        assert response["ExecutedVersion"] == "2"
        assert json.loads(response["Payload"].read())["generation"] == 2
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="shop", Qualifier="nowhere", Payload=b"{}")


def test_the_report_line_and_metrics_name_the_version(shop):
    _call(shop, "shop:1")
    lines = shop.http("GET", "/v1/functions/shop/logs", params={"tail": "200"}).text
    assert "Version: 1" in lines
    metrics = shop.http("GET", "/metrics").text
    assert 'function="shop",version="1"' in metrics


def test_a_rollback_returns_an_alias_to_where_it_was(shop):
    shop.http("PUT", "/v1/functions/shop/aliases/prod", json={"version": "1"})
    moved = shop.http("PUT", "/v1/functions/shop/aliases/prod", json={"version": "2"})
    assert moved.status_code == 200 and moved.json()["previous"]["version"] == "1"
    assert _call(shop, "shop:prod")[1] == "2"
    back = shop.http("POST", "/v1/functions/shop/aliases/prod/rollback")
    assert back.status_code == 200 and back.json()["version"] == "1"
    assert _call(shop, "shop:prod")[1] == "1"


def test_a_function_url_per_alias(shop):
    shop.http("PUT", "/v1/functions/shop/aliases/web", json={"version": "1"})
    for path, text in (("/fn/shop:web/x", "generation 1"), ("/fn/shop/x", "generation 3")):
        response = httpx.get(shop.url + path, timeout=30)
        assert response.status_code == 200 and response.text == text, response.text


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind"),
    [
        (
            "PUT",
            "/v1/functions/shop/aliases/7",
            {"version": "1"},
            400,
            "InvalidParameterValueException",
        ),
        (
            "PUT",
            "/v1/functions/shop/aliases/bad",
            {"version": "9"},
            404,
            "ResourceNotFoundException",
        ),
        (
            "PUT",
            "/v1/functions/shop/aliases/bad",
            {"version": "1", "weights": {"2": 1.5}},
            400,
            "InvalidParameterValueException",
        ),
        (
            "PUT",
            "/v1/functions/shop/aliases/bad",
            {"version": "$LATEST", "weights": {"2": 0.5}},
            400,
            "InvalidParameterValueException",
        ),
        ("PUT", "/v1/functions/shop/aliases/bad", {}, 400, "InvalidParameterValueException"),
        ("GET", "/v1/functions/shop/aliases/nowhere", None, 404, "ResourceNotFoundException"),
        ("POST", "/v1/functions/shop:9/invoke", {}, 404, "ResourceNotFoundException"),
        ("POST", "/v1/functions/shop:nowhere/invoke", {}, 404, "ResourceNotFoundException"),
        ("POST", "/v1/functions/nobody/versions", {}, 404, "ResourceNotFoundException"),
        (
            "DELETE",
            "/v1/functions/shop/versions/$LATEST",
            None,
            400,
            "InvalidParameterValueException",
        ),
    ],
)
def test_bad_requests_get_a_clear_error_and_change_nothing(shop, method, path, body, status, kind):
    before = shop.http("GET", "/v1/functions/shop/aliases").json()
    response = shop.http(method, path, **({"json": body} if body is not None else {}))
    assert response.status_code == status, response.text
    assert response.json()["errorType"] == kind
    assert shop.http("GET", "/v1/functions/shop/aliases").json() == before


def test_a_version_an_alias_routes_to_cannot_be_deleted(shop):
    shop.http("PUT", "/v1/functions/shop/aliases/pin", json={"version": "1"})
    refused = shop.http("DELETE", "/v1/functions/shop/versions/1")
    assert refused.status_code == 409 and "pin" in refused.json()["errorMessage"]
    assert _call(shop, "shop:1")[1] == "1"


def test_the_cli_publishes_points_rolls_back_and_removes(shared_server, tmp_path):
    server = shared_server
    _deploy(server, tmp_path, 1, name="cli-shop")
    published = server.cli("publish", "cli-shop", "--description", "first")
    assert published.returncode == 0 and "published cli-shop:1" in published.stdout
    directory = write_function(tmp_path, "cli-shop", CODE.format(generation=2))
    deployed = server.cli("deploy", str(directory), "--alias", "live")
    assert deployed.returncode == 0, deployed.stderr
    assert "published cli-shop:2" in deployed.stdout and "live -> 2" in deployed.stdout
    split = server.cli("alias", "set", "cli-shop", "live", "1", "--weight", "2=0.25")
    assert split.returncode == 0 and "1 (75%) + 2 (25%)" in split.stdout, split.stderr
    listing = server.cli("aliases", "cli-shop")
    assert "live" in listing.stdout and "1 (75%) + 2 (25%)" in listing.stdout
    versions = server.cli("versions", "cli-shop")
    assert [line.split()[0] for line in versions.stdout.splitlines()[1:]] == ["$LATEST", "1", "2"]
    back = server.cli("rollback", "cli-shop", "live")
    assert back.returncode == 0 and "-> 2 (rolled back)" in back.stdout
    invoked = server.cli("invoke", "cli-shop:live")
    assert json.loads(invoked.stdout)["generation"] == 2
    refused = server.cli("rm", "cli-shop:2")
    assert refused.returncode != 0 and "live" in refused.stderr
    assert server.cli("rm", "cli-shop:1").returncode == 0
    assert server.cli("alias", "rm", "cli-shop", "live").returncode == 0
    assert server.cli("rm", "cli-shop").returncode == 0
    assert server.http("GET", "/v1/functions/cli-shop/versions").status_code == 404


def test_versions_and_aliases_survive_kill_9_of_serve(tmp_path):
    data = tmp_path / "data"
    first = Server(data).start()
    try:
        _deploy(first, tmp_path, 1, name="durable")
        assert first.http("POST", "/v1/functions/durable/versions", json={}).status_code == 201
        _deploy(first, tmp_path, 2, name="durable")
        first.http("PUT", "/v1/functions/durable/aliases/live", json={"version": "1"})
    finally:
        first.stop(signal.SIGKILL)
    second = Server(data).start()
    try:
        assert _call(second, "durable:live")[0]["generation"] == 1
        assert _call(second, "durable")[0]["generation"] == 2
        again = second.http("POST", "/v1/functions/durable/versions", json={})
        assert again.json()["version"] == "2"  # the counter went on where it was
    finally:
        second.stop()
