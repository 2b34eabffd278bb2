"""Tracking asynchronous invocations: one by id, or a function's, filtered by state."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import InvalidRequest, NotFound
from mlambda.events.queue import EXPIRED, FAILED, FINAL, STATES
from mlambda.gateway.body import state_and_limit
from mlambda.platform import Platform

MAX_LIMIT = 1000


def _platform(request: Request) -> Platform:
    return request.app.state.platform


async def get_invocation(request: Request) -> Response:
    record = await _platform(request).async_invoker.queue.get(request.path_params["id"])
    if record is None:
        raise NotFound(f"no asynchronous invocation {request.path_params['id']!r}")
    return JSONResponse(record.to_dict())


async def dead_letters(request: Request) -> Response:
    """A function's failed and expired invocations, newest first."""
    platform = _platform(request)
    name = request.path_params["name"]
    platform.get(name)
    records = [
        record
        for state in (FAILED, EXPIRED)
        for record in await platform.async_invoker.queue.list(name, state, MAX_LIMIT)
    ]
    records.sort(key=lambda r: r.enqueued_at, reverse=True)
    return JSONResponse({"deadLetters": [record.to_dict() for record in records]})


async def replay(request: Request) -> Response:
    """Run a finished invocation's event again, as a new invocation (202)."""
    platform = _platform(request)
    name = request.path_params["name"]
    platform.get(name)
    record = await platform.async_invoker.queue.get(request.path_params["id"])
    if record is None or record.function != name:
        raise NotFound(f"no asynchronous invocation {request.path_params['id']!r} of {name!r}")
    if record.state not in FINAL:
        raise InvalidRequest(f"invocation {record.id} is {record.state}: it has not finished")
    event = await platform.async_invoker.accept(name, record.payload)
    return JSONResponse(
        {"invocation_id": event.id, "state": event.state, "replayOf": record.id}, status_code=202
    )


async def list_invocations(request: Request) -> Response:
    """A function's (``/v1/functions/{name}/invocations``) or every function's."""
    platform = _platform(request)
    name = request.path_params.get("name")
    if name is not None:
        platform.get(name)
    state, limit = state_and_limit(request, STATES, MAX_LIMIT)
    records = await platform.async_invoker.queue.list(name, state, limit)
    return JSONResponse({"invocations": [record.to_dict() for record in records]})
