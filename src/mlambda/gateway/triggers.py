"""Triggers through the API: a function's list, add one, show, enable, disable and delete one.
A trigger's routes by id check the caller's key against the function it feeds."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import Conflict
from mlambda.events.triggers.config import parse_trigger
from mlambda.events.triggers.store import CONFIG, Trigger
from mlambda.gateway.auth import require
from mlambda.gateway.body import read_object
from mlambda.platform import Platform
from mlambda.security.keys import Need

MAX_BODY = 64 * 1024


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def _trigger(request: Request, action: str) -> Trigger:
    trigger = _platform(request).triggers.store.get(request.path_params["id"])
    require(request, Need(action, trigger.function))
    return trigger


async def list_triggers(request: Request) -> Response:
    platform = _platform(request)
    name = platform.get(request.path_params["name"]).name
    shown = [platform.triggers.view(t) for t in platform.triggers.store.list(name)]
    return JSONResponse({"triggers": shown})


async def create_trigger(request: Request) -> Response:
    platform = _platform(request)
    name = platform.get(request.path_params["name"]).name
    spec, _ = parse_trigger(await read_object(request, MAX_BODY), "trigger")
    trigger = await platform.triggers.create(name, spec)
    return JSONResponse(platform.triggers.view(trigger), status_code=201)


async def get_trigger(request: Request) -> Response:
    return JSONResponse(_platform(request).triggers.view(_trigger(request, "read")))


async def enable_trigger(request: Request) -> Response:
    return await _set_enabled(request, True)


async def disable_trigger(request: Request) -> Response:
    return await _set_enabled(request, False)


async def _set_enabled(request: Request, enabled: bool) -> Response:
    triggers = _platform(request).triggers
    trigger = await triggers.set_enabled(_trigger(request, "deploy").id, enabled)
    return JSONResponse(triggers.view(trigger))


async def delete_trigger(request: Request) -> Response:
    triggers = _platform(request).triggers
    trigger = _trigger(request, "deploy")
    if trigger.origin == CONFIG:
        raise Conflict(
            f"trigger {trigger.id} is one of {trigger.function}'s [[triggers]] in mlambda.toml: "
            "remove it there and deploy again, or disable it (mlambda trigger disable ID)"
        )
    await triggers.delete(trigger.id)
    return Response(status_code=204)
