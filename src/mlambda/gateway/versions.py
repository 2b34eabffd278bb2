"""The native versions and aliases routes: publish, list, delete a version; set, show, list,
roll back and delete an alias."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import InvalidSpec
from mlambda.gateway.body import read_object
from mlambda.observe.observer import terminal
from mlambda.platform import Platform
from mlambda.registry.model import Routing, parse_weights

MAX_BODY = 64 * 1024


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def _text(body: dict[str, Any], key: str, default: str | None = "") -> Any:
    """A string field; absent or null: ``default``."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidSpec(f"{key} must be a string, got {value!r}")
    return value


async def publish(request: Request) -> Response:
    """Freeze $LATEST as the next version (201); nothing changed since the last one: 200 with
    that version."""
    body = await read_object(request, MAX_BODY)
    name = request.path_params["name"]
    record, created = _platform(request).versions.publish(
        name,
        _text(body, "description"),
        code_sha256=_text(body, "codeSha256"),
        revision=_text(body, "revisionId"),
    )
    if created:
        terminal.info("publish %s %s %s", name, record.version, record.digest[:19])
    return JSONResponse({**record.to_dict(), "created": created}, 201 if created else 200)


async def list_versions(request: Request) -> Response:
    records = _platform(request).versions.versions(request.path_params["name"])
    return JSONResponse({"versions": [r.to_dict() for r in records]})


async def delete_version(request: Request) -> Response:
    name, version = request.path_params["name"], request.path_params["version"]
    record = await _platform(request).versions.delete_version(name, version)
    terminal.info("delete %s version %s", name, version)
    return JSONResponse({"deleted": f"{name}:{record.version}", "digest": record.digest})


async def list_aliases(request: Request) -> Response:
    aliases = _platform(request).versions.aliases(request.path_params["name"])
    return JSONResponse({"aliases": [a.to_dict() for a in aliases]})


async def get_alias(request: Request) -> Response:
    alias = _platform(request).versions.alias(
        request.path_params["name"], request.path_params["alias"]
    )
    return JSONResponse(alias.to_dict())


async def put_alias(request: Request) -> Response:
    """Create (201) or move (200) an alias: ``{"version": "2", "weights": {"3": 0.1}}``."""
    body = await read_object(request, MAX_BODY)
    version = body.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if not isinstance(version, str):
        raise InvalidSpec('version is required: "$LATEST" or a published version number')
    weights = body.get("weights") or {}
    if not isinstance(weights, dict):
        raise InvalidSpec('weights must be an object: {"VERSION": share in [0, 1)}')
    name, alias_name = request.path_params["name"], request.path_params["alias"]
    alias, created = await _platform(request).versions.set_alias(
        name,
        alias_name,
        Routing(version, parse_weights(weights)),
        description=_text(body, "description", None),
        revision=_text(body, "revisionId"),
    )
    terminal.info("alias %s:%s -> %s", name, alias_name, _routes(alias.routing))
    return JSONResponse(alias.to_dict(), 201 if created else 200)


async def rollback(request: Request) -> Response:
    name, alias_name = request.path_params["name"], request.path_params["alias"]
    alias = await _platform(request).versions.rollback(name, alias_name)
    terminal.info("rollback %s:%s -> %s", name, alias_name, _routes(alias.routing))
    return JSONResponse(alias.to_dict())


async def delete_alias(request: Request) -> Response:
    name, alias_name = request.path_params["name"], request.path_params["alias"]
    await _platform(request).versions.delete_alias(name, alias_name)
    return Response(status_code=204)


def _routes(routing: Routing) -> str:
    extra = "".join(f" + {v} ({w:.0%})" for v, w in routing.weights)
    return f"{routing.version}{extra}"
