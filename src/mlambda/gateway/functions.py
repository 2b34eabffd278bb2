"""Management routes: list, show, deploy (PUT a bundle), remove, logs."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from mlambda.errors import InvalidRequest
from mlambda.gateway.body import read_body
from mlambda.observe.log_query import LogFilter, parse_query
from mlambda.observe.observer import terminal
from mlambda.observe.processes import process_rows
from mlambda.platform import Platform
from mlambda.registry import FunctionRecord
from mlambda.registry.model import Routing


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def _describe(platform: Platform, record: FunctionRecord) -> dict[str, Any]:
    pool = platform.router.pools.get(record.name)
    counts = pool.counts() if pool else {"starting": 0, "busy": 0, "idle": 0, "queued": 0}
    return {**record.to_dict(), "instances": counts}


async def list_functions(request: Request) -> Response:
    platform = _platform(request)
    return JSONResponse({"functions": [_describe(platform, r) for r in platform.registry.list()]})


async def get_function(request: Request) -> Response:
    platform = _platform(request)
    return JSONResponse(_describe(platform, platform.get(request.path_params["name"])))


async def put_function(request: Request) -> Response:
    platform = _platform(request)
    archive = await read_body(request, platform.settings.max_bundle_bytes, "Bundle")
    existed = platform.registry.get(request.path_params["name"]) is not None
    record, changed = await platform.deploy(archive, name=request.path_params["name"])
    status = 201 if changed and not existed else 200
    state = "unchanged" if not changed else "updated" if existed else "created"
    terminal.info("deploy %s %s %s (%s)", record.name, record.version, record.digest[:19], state)
    reply: dict[str, Any] = {"function": _describe(platform, record), "changed": changed}
    # ?publish=1[&alias=live][&description=...]: deploy, publish and point an alias in one go.
    alias = request.query_params.get("alias")
    if request.query_params.get("publish") in ("1", "true", "yes") or alias:
        version, _ = platform.versions.publish(
            record.name, request.query_params.get("description", "")
        )
        reply["published"] = version.to_dict()
        if alias:
            moved, _ = await platform.versions.set_alias(
                record.name, alias, Routing(version.version)
            )
            reply["alias"] = moved.to_dict()
    return JSONResponse(reply, status)


async def delete_function(request: Request) -> Response:
    record = await _platform(request).remove(request.path_params["name"])
    terminal.info("delete %s %s", record.name, record.digest[:19])
    return JSONResponse({"deleted": record.name, "digest": record.digest})


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise InvalidRequest(
            f"query parameter {name!r} must be a non-negative integer, got {raw!r}"
        )
    return int(raw)


async def list_processes(request: Request) -> Response:
    # Every process the platform runs: zygotes, templates and instances, with memory.
    platform = _platform(request)
    rows = process_rows(platform.backend.shared_processes(), platform.router.pools, time.time())
    return JSONResponse({"processes": rows})


async def function_logs(request: Request) -> Response:
    """The function's last ``tail`` log lines (of those ``since``, containing ``filter``, of
    ``request_id``; as text or JSON lines); with ``follow=1`` the response stays open."""
    platform = _platform(request)
    name = request.path_params["name"]
    platform.get(name)
    tail = _int_param(request, "tail", 100)
    params = request.query_params
    query = parse_query(
        params.get("since", ""),
        params.get("filter", ""),
        params.get("request_id", ""),
        params.get("format", "text"),
        time.time(),
    )
    selection = LogFilter(query)
    # Filtered, the tail is of the lines selected: the whole file is read (max_log_bytes).
    lines = platform.logs.tail(name, 1 << 62 if query.filters else tail)
    history = "".join(list(selection.select(lines))[-tail:] if tail else [])
    media = "application/x-ndjson" if query.format == "json" else "text/plain; charset=utf-8"
    if params.get("follow") not in ("1", "true", "yes"):
        return Response(history, media_type=media)

    async def stream():
        yield history
        async for text in platform.logs.follow(name):
            selected = "".join(selection.select(text.splitlines(keepends=True)))
            if selected:
                yield selected

    return StreamingResponse(stream(), media_type=media)
