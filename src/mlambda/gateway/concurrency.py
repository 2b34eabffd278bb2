"""The native concurrency routes: a function's reserved concurrency, and provisioned
concurrency per version or alias (`mlambda concurrency`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import InvalidSpec
from mlambda.gateway.body import read_object
from mlambda.observe.observer import terminal
from mlambda.platform import Platform

MAX_BODY = 64 * 1024


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def _describe(platform: Platform, name: str) -> dict[str, Any]:
    provisioning = platform.provisioning
    return {
        "function": name,
        "reserved": provisioning.reserved(name),
        "provisioned": [
            {"qualifier": c.qualifier, **provisioning.status(c), "updatedAt": c.updated_at}
            for c in provisioning.provisioned(name)
        ],
        "limit": provisioning.gate.limit,
        "unreserved": provisioning.gate.unreserved,
    }


async def get_concurrency(request: Request) -> Response:
    platform = _platform(request)
    return JSONResponse(_describe(platform, request.path_params["name"]))


def _count(body: dict[str, Any], field: str, nullable: bool) -> int | None:
    value = body.get(field)
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        what = "an integer, or null to remove it" if nullable else "an integer"
        raise InvalidSpec(f"{field} must be {what}, got {value!r}")
    return value


async def put_concurrency(request: Request) -> Response:
    """``{"reserved": N}`` (null: no reservation): at most N calls at once, kept for it."""
    platform = _platform(request)
    name = request.path_params["name"]
    body = await read_object(request, MAX_BODY)
    if "reserved" not in body:
        raise InvalidSpec('the body is {"reserved": N} (null removes the reservation)')
    reserved = _count(body, "reserved", nullable=True)
    platform.provisioning.reserve(name, reserved)
    terminal.info("concurrency %s reserved %s", name, "none" if reserved is None else reserved)
    return JSONResponse(_describe(platform, name))


async def put_provisioned(request: Request) -> Response:
    """``{"requested": N}``: N calls' worth of instances kept started for the qualifier."""
    platform = _platform(request)
    name, qualifier = request.path_params["name"], request.path_params["qualifier"]
    requested = _count(await read_object(request, MAX_BODY), "requested", nullable=False)
    await platform.provisioning.provision(name, qualifier, requested)
    terminal.info("concurrency %s:%s provisioned %s", name, qualifier, requested)
    return JSONResponse(_describe(platform, name))


async def delete_provisioned(request: Request) -> Response:
    platform = _platform(request)
    name, qualifier = request.path_params["name"], request.path_params["qualifier"]
    await platform.provisioning.provision(name, qualifier, None)
    return Response(status_code=204)
