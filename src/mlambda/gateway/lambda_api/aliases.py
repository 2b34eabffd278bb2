"""The Lambda API's versions and aliases: PublishVersion, ListVersionsByFunction,
Create/Get/Update/Delete/ListAliases, over the same releases as ``mlambda publish`` and
``mlambda alias``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import InvalidSpec
from mlambda.gateway.lambda_api import shapes
from mlambda.gateway.lambda_api.common import (
    aws_route,
    json_body,
    page,
    platform_of,
    target,
    version_key,
)
from mlambda.gateway.lambda_api.functions import configuration
from mlambda.observe.observer import terminal
from mlambda.registry.model import Alias, Routing, parse_weights


def _text(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise InvalidSpec(f"{field} must be a string, got {value!r}")
    return value


@aws_route
async def publish_version(request: Request) -> Response:
    platform = platform_of(request)
    name, _ = target(request)
    body = await json_body(request)
    record, created = platform.versions.publish(
        name,
        _text(body, "Description") or "",
        code_sha256=_text(body, "CodeSha256") or "",
        revision=_text(body, "RevisionId") or "",
    )
    if created:
        terminal.info("publish %s %s (Lambda API)", name, record.version)
    return JSONResponse(configuration(platform, record), status_code=201 if created else 200)


@aws_route
async def list_versions(request: Request) -> Response:
    platform = platform_of(request)
    name, _ = target(request)
    records = sorted(platform.versions.versions(name), key=version_key)
    chunk, marker = page(request, records, version_key)
    reply: dict[str, Any] = {"Versions": [configuration(platform, r) for r in chunk]}
    if marker:
        reply["NextMarker"] = marker
    return JSONResponse(reply)


def _shape(request: Request, alias: Alias) -> dict[str, Any]:
    return shapes.alias_configuration(alias, platform_of(request).settings.region)


def _version(body: dict[str, Any], required: bool) -> str | None:
    version = body.get("FunctionVersion")
    if version is None and required:
        raise InvalidSpec("FunctionVersion is required ($LATEST or a version number)")
    if version is not None and not isinstance(version, str):
        raise InvalidSpec(f"FunctionVersion must be a string, got {version!r}")
    return version


@aws_route
async def create_alias(request: Request) -> Response:
    platform = platform_of(request)
    name, _ = target(request)
    body = await json_body(request)
    alias_name = _text(body, "Name")
    if not alias_name:
        raise InvalidSpec("Name is required")
    version = _version(body, required=True)
    assert version is not None
    weights = parse_weights(shapes.routing_weights(body) or {})
    alias, _ = await platform.versions.set_alias(
        name,
        alias_name,
        Routing(version, weights),
        description=_text(body, "Description") or "",
        must_exist=False,
    )
    terminal.info("alias %s:%s -> %s (Lambda API)", name, alias_name, version)
    return JSONResponse(_shape(request, alias), status_code=201)


@aws_route
async def get_alias(request: Request) -> Response:
    name, _ = target(request)
    alias = platform_of(request).versions.alias(name, request.path_params["alias"])
    return JSONResponse(_shape(request, alias))


@aws_route
async def update_alias(request: Request) -> Response:
    """What the call leaves out stays as it was (the version, the weights, the description)."""
    platform = platform_of(request)
    name, _ = target(request)
    alias_name = request.path_params["alias"]
    body = await json_body(request)
    current = platform.versions.alias(name, alias_name)
    version = _version(body, required=False) or current.routing.version
    weights = shapes.routing_weights(body)
    routing = Routing(
        version, current.routing.weights if weights is None else parse_weights(weights)
    )
    alias, _ = await platform.versions.set_alias(
        name,
        alias_name,
        routing,
        description=_text(body, "Description"),
        must_exist=True,
        revision=_text(body, "RevisionId") or "",
    )
    terminal.info("alias %s:%s -> %s (Lambda API)", name, alias_name, routing.version)
    return JSONResponse(_shape(request, alias))


@aws_route
async def delete_alias(request: Request) -> Response:
    name, _ = target(request)
    await platform_of(request).versions.delete_alias(name, request.path_params["alias"])
    return Response(status_code=204)


@aws_route
async def list_aliases(request: Request) -> Response:
    """The aliases (``FunctionVersion=N``: those that route to N), by name."""
    platform = platform_of(request)
    name, _ = target(request)
    only = request.query_params.get("FunctionVersion")
    aliases = [
        a for a in platform.versions.aliases(name) if only is None or only in a.routing.versions
    ]
    chunk, marker = page(request, aliases, lambda a: a.name)
    reply: dict[str, Any] = {"Aliases": [_shape(request, a) for a in chunk]}
    if marker:
        reply["NextMarker"] = marker
    return JSONResponse(reply)
