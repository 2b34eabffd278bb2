"""Gateway + pool behaviour that needs no server process: concurrency, draining, limits."""

from __future__ import annotations

import asyncio

import pytest

from mlambda import bundle

pytestmark = pytest.mark.anyio

SLOW = """
    import os, threading, time

    def handler(event, context):
        time.sleep(event.get("seconds", 0))
        return {"pid": os.getpid(), "thread": threading.get_ident(), "v": VERSION}

    VERSION = 1
"""


async def test_concurrency_lets_one_instance_serve_requests_in_parallel(
    platform, http, make_function
):
    await platform.deploy(bundle.pack(make_function("para", SLOW, concurrency=4)))
    started = asyncio.get_running_loop().time()
    replies = await asyncio.gather(
        *(http.post("/v1/functions/para/invoke", json={"seconds": 0.5}) for _ in range(4))
    )
    elapsed = asyncio.get_running_loop().time() - started
    bodies = [r.json() for r in replies]
    assert len({b["pid"] for b in bodies}) == 1
    assert len({b["thread"] for b in bodies}) == 4
    assert elapsed < 1.9  # four half-second calls ran side by side, not one after another


async def test_redeploy_lets_the_running_request_finish_on_the_old_code(
    platform, http, make_function
):
    directory = make_function("rolling", SLOW)
    await platform.deploy(bundle.pack(directory))
    old_pid = (await http.post("/v1/functions/rolling/invoke", json={})).json()["pid"]

    in_flight = asyncio.ensure_future(
        http.post("/v1/functions/rolling/invoke", json={"seconds": 1})
    )
    await asyncio.sleep(0.3)
    (directory / "app.py").write_text((directory / "app.py").read_text().replace("= 1", "= 2"))
    _, changed = await platform.deploy(bundle.pack(directory))
    assert changed

    fresh = (await http.post("/v1/functions/rolling/invoke", json={})).json()
    assert fresh["v"] == 2 and fresh["pid"] != old_pid
    finished = (await in_flight).json()
    assert finished == {"pid": old_pid, "thread": finished["thread"], "v": 1}


async def test_a_response_over_the_limit_is_a_function_error(platform, http, make_function):
    code = "def handler(event, context):\n    return 'x' * (7 * 1024 * 1024)\n"
    await platform.deploy(bundle.pack(make_function("huge", code)))
    response = await http.post("/v1/functions/huge/invoke", json={})
    assert response.status_code == 502
    assert response.json()["errorType"] == "Function.ResponseSizeTooLarge"


async def test_an_unserialisable_result_is_a_marshal_error(platform, http, make_function):
    code = "def handler(event, context):\n    return object()\n"
    await platform.deploy(bundle.pack(make_function("odd", code)))
    response = await http.post("/v1/functions/odd/invoke", json={})
    assert response.status_code == 502
    body = response.json()
    assert body["errorType"] == "Runtime.MarshalError"
    assert "not JSON serializable" in body["errorMessage"]


async def test_remove_stops_the_instances_and_frees_the_artifact(platform, http, make_function):
    record, _ = await platform.deploy(bundle.pack(make_function("gone", SLOW)))
    await http.post("/v1/functions/gone/invoke", json={})
    assert platform.store.has(record.digest)
    response = await http.delete("/v1/functions/gone")
    assert response.json() == {"deleted": "gone", "digest": record.digest}
    assert not platform.store.has(record.digest)
    assert (await http.get("/v1/functions/gone")).status_code == 404


async def test_no_auth_mode_needs_no_key(tmp_path, make_function):
    import httpx

    from mlambda.gateway.app import create_app
    from mlambda.platform import Platform
    from mlambda.settings import Settings

    open_platform = Platform(Settings.from_env({}, data_dir=tmp_path / "open", auth=False))
    await open_platform.deploy(bundle.pack(make_function("hi", SLOW)))
    transport = httpx.ASGITransport(app=create_app(open_platform))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            assert (await client.post("/v1/functions/hi/invoke", json={})).status_code == 200
        assert not (tmp_path / "open" / "admin.key").exists()
    finally:
        await open_platform.stop()


async def test_json_nested_too_deeply_is_a_400_not_a_500(http):
    response = await http.post("/v1/functions/any/invoke", content=b"[" * 5000 + b"]" * 5000)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["errorMessage"]
