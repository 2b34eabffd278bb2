"""The direct route (gateway/direct.py) answers every form of the plain invoke call exactly as
the routed endpoint does: the same status, body and headers, access control included."""

from __future__ import annotations

import json

import httpx
import pytest

from mlambda import bundle
from mlambda.gateway.app import create_app
from mlambda.gateway.direct import target
from mlambda.security.keys import Rate

pytestmark = pytest.mark.anyio

ECHO = """
    def handler(event, context):
        if event.get("fail"):
            raise ValueError("asked to fail")
        return {"echo": event}
"""

# Headers that differ between any two answers whichever way they came.
VARYING = {"date", "server", "x-mlambda-request-id", "content-length"}


def _scope(method: str = "POST", path: str = "/v1/functions/f/invoke", **extra: object) -> dict:
    return {"method": method, "path": path, "query_string": b"", "root_path": "", **extra}


@pytest.mark.parametrize(
    ("scope", "segment"),
    [
        (_scope(), "f"),
        (_scope(path="/v1/functions/f:live/invoke"), "f:live"),
        (_scope(query_string=b"mode=async"), None),
        (_scope(query_string=b"qualifier=2"), None),
        (_scope(method="GET"), None),
        (_scope(path="/v1/functions/f/invoke/x"), None),
        (_scope(path="/v1/functions//invoke"), None),
        (_scope(path="/v1/functions/a/b/invoke"), None),
        (_scope(root_path="/behind-a-proxy"), None),
    ],
)
def test_which_requests_take_the_direct_route(scope, segment):
    assert target(scope) == segment


def _comparable(response: httpx.Response) -> tuple[int, object, dict[str, str]]:
    try:
        body: object = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "requestId"}
    headers = {k: v for k, v in response.headers.items() if k not in VARYING}
    return response.status_code, body, headers


async def test_the_direct_route_answers_as_the_routed_endpoint(platform, make_function):
    await platform.deploy(bundle.pack(make_function("echo", ECHO)))
    _, scoped = platform.keys.create("other", ["invoke:other*"])
    _, limited = platform.keys.create("slow", ["invoke"], rate=Rate(0.001, 1))
    too_big = b'"' + b"x" * platform.settings.max_payload_bytes + b'"'
    cases = {
        "a call": ("echo", b'{"a": 1}', platform.api_key),
        "an empty body": ("echo", b"", platform.api_key),
        "a function error": ("echo", b'{"fail": true}', platform.api_key),
        "name:$LATEST": ("echo:$LATEST", b"{}", platform.api_key),
        "an unknown function": ("nope", b"{}", platform.api_key),
        "an unknown version": ("echo:7", b"{}", platform.api_key),
        "a body that is not JSON": ("echo", b"{not json", platform.api_key),
        "a body over the limit": ("echo", too_big, platform.api_key),
        "no key": ("echo", b"{}", None),
        "a wrong key": ("echo", b"{}", "not-the-key"),
        "a key for other functions": ("echo", b"{}", scoped),
        "a key at its rate limit": ("echo", b"{}", limited),
    }
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://mlambda") as client:
        spent = await client.post(
            "/v1/functions/echo/invoke",
            content=b"{}",
            headers={"Authorization": f"Bearer {limited}"},
        )
        assert spent.status_code == 200  # the rate-limited key's one token
        statuses = set()
        for case, (name, body, key) in cases.items():
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            # The query sends the same call the routed way ($LATEST is what no qualifier means).
            routed = "?qualifier=%24LATEST" if ":" not in name else "?mode=sync"
            direct, via_routes = [
                _comparable(
                    await client.post(
                        f"/v1/functions/{name}/invoke{query}", content=body, headers=headers
                    )
                )
                for query in ("", routed)
            ]
            assert direct == via_routes, case
            statuses.add(direct[0])
        assert statuses == {200, 400, 401, 403, 404, 413, 429, 502}  # every kind of answer met
        ok = await client.post(
            "/v1/functions/echo/invoke",
            content=b'{"a": 1}',
            headers={"Authorization": f"Bearer {platform.api_key}"},
        )
        assert ok.json() == {"echo": {"a": 1}}
        assert ok.headers["x-amz-executed-version"] == "$LATEST"
        assert ok.headers["content-type"] == "application/json"


async def test_a_fault_in_the_platform_is_a_500_in_the_error_shape_both_ways(
    platform, make_function, monkeypatch
):
    await platform.deploy(bundle.pack(make_function("echo", ECHO)))

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(platform, "invoke", broken)
    transport = httpx.ASGITransport(app=create_app(platform), raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {platform.api_key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://mlambda") as client:
        for path in ("/v1/functions/echo/invoke", "/v1/functions/echo/invoke?mode=sync"):
            response = await client.post(path, content=b"{}", headers=headers)
            assert response.status_code == 500
            assert json.loads(response.content)["errorType"] == "ServiceException"
