"""The Lambda API's functions: CreateFunction from a Lambda zip, GetFunction (with a link to
the code), GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
UpdateFunctionConfiguration, DeleteFunction, GetAccountSettings.

Every change is a deploy of a bundle: the zip's files with an mlambda.toml holding the Lambda
fields (over the zip's own mlambda.toml, which may set what Lambda has no field for), so a
function made here behaves as one deployed with ``mlambda deploy``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import Conflict, InvalidSpec, PreconditionFailed
from mlambda.gateway.auth import require
from mlambda.gateway.lambda_api import code, shapes
from mlambda.gateway.lambda_api.common import (
    aws_route,
    decode_zip,
    json_body,
    page,
    platform_of,
    record_for,
    target,
    version_key,
)
from mlambda.observe.observer import terminal
from mlambda.packaging import lambda_zip
from mlambda.platform import Platform
from mlambda.registry.model import LATEST, FunctionRecord, is_version
from mlambda.security.keys import Need
from mlambda.security.permissions import function_ref
from mlambda.spec import NAME_PATTERN

# Lambda's defaults where neither the call nor the zip's mlambda.toml says.
LAMBDA_DEFAULTS = {"timeout_s": 3, "memory_mb": 128}
_sizes: dict[str, int] = {}  # digest -> bundle size (artifacts never change)


def _code_size(platform: Platform, digest: str) -> int:
    if digest not in _sizes:
        _sizes[digest] = len(platform.store.get(digest))
    return _sizes[digest]


def configuration(platform: Platform, record: FunctionRecord) -> dict[str, Any]:
    size = _code_size(platform, record.digest)
    return shapes.function_configuration(record, platform.settings.region, size)


def _zip_limit(platform: Platform) -> int:
    return platform.settings.max_bundle_bytes * 4 // 3 + 64 * 1024  # base64 in JSON


async def _current_files(platform: Platform, record: FunctionRecord) -> list[lambda_zip.File]:
    archive = await asyncio.to_thread(platform.store.get, record.digest)
    return await asyncio.to_thread(lambda_zip.read_bundle, archive, platform.unpack_limits)


async def _deploy(
    platform: Platform, name: str, files: list[lambda_zip.File], table: dict[str, Any]
) -> FunctionRecord:
    archive = await asyncio.to_thread(lambda_zip.with_table, files, {**table, "name": name})
    record, changed = await platform.deploy(archive, name=name)
    if changed:
        terminal.info("deploy %s %s %s (Lambda API)", name, record.version, record.digest[:19])
    return record


def _publish(platform: Platform, record: FunctionRecord) -> FunctionRecord:
    """``Publish: true``: the new $LATEST as the next version, described as $LATEST is."""
    version, _ = platform.versions.publish(record.name, record.spec.description)
    return version


@aws_route
async def create_function(request: Request) -> Response:
    platform = platform_of(request)
    body = await json_body(request, _zip_limit(platform))
    raw_name = body.get("FunctionName")
    if not isinstance(raw_name, str):
        raise InvalidSpec("FunctionName is required")
    name, qualifier = function_ref(raw_name)
    if qualifier or not NAME_PATTERN.fullmatch(name):
        raise InvalidSpec(f"FunctionName must be 1-64 letters, digits, '-' or '_', got {name!r}")
    require(request, Need("deploy", name))
    if platform.registry.get(name) is not None:
        raise Conflict(f"Function already exist: {name}")
    files = await asyncio.to_thread(
        lambda_zip.read_zip, decode_zip(body.get("Code")), platform.unpack_limits
    )
    fields = shapes.config_fields(body, ignore=("FunctionName", "Code", "Publish"))
    table = {**LAMBDA_DEFAULTS, **lambda_zip.function_table(files), **fields}
    if "handler" not in table and "model" not in table:
        raise InvalidSpec("Handler is required (the module and function, as app.handler)")
    record = await _deploy(platform, name, files, table)
    if body.get("Publish"):
        record = _publish(platform, record)
    return JSONResponse(configuration(platform, record), status_code=201)


@aws_route
async def get_function(request: Request) -> Response:
    platform = platform_of(request)
    name, qualifier = target(request)
    record = record_for(platform, name, qualifier)
    location = code.link(str(request.base_url), record.digest, time.time())
    reply: dict[str, Any] = {
        "Configuration": configuration(platform, record),
        "Code": {"RepositoryType": "S3", "Location": location},
    }
    reserved = platform.provisioning.reserved(name)
    if reserved is not None:
        reply["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
    return JSONResponse(reply)


@aws_route
async def get_function_configuration(request: Request) -> Response:
    platform = platform_of(request)
    name, qualifier = target(request)
    return JSONResponse(configuration(platform, record_for(platform, name, qualifier)))


@aws_route
async def list_functions(request: Request) -> Response:
    """Each function's $LATEST (``FunctionVersion=ALL``: and every version), by name."""
    platform = platform_of(request)
    every = request.query_params.get("FunctionVersion", "")
    if every not in ("", "ALL"):
        raise InvalidSpec(f"FunctionVersion must be ALL, got {every!r}")
    records: list[FunctionRecord] = []
    for latest in platform.registry.list():
        records.append(latest)
        if every:
            records += platform.registry.releases.versions(latest.name)
    records.sort(key=version_key)
    chunk, marker = page(request, records, version_key)
    reply: dict[str, Any] = {"Functions": [configuration(platform, r) for r in chunk]}
    if marker:
        reply["NextMarker"] = marker
    return JSONResponse(reply)


def _check_revision(record: FunctionRecord, body: dict[str, Any]) -> None:
    revision = body.get("RevisionId")
    if revision and revision != record.revision_id:
        raise PreconditionFailed(
            "The Revision Id provided does not match the latest Revision Id. Call the "
            "GetFunction/GetAlias API to retrieve the latest Revision Id"
        )


async def _table_of(
    platform: Platform, record: FunctionRecord
) -> tuple[list[lambda_zip.File], dict[str, Any]]:
    files = await _current_files(platform, record)
    return files, lambda_zip.function_table(files)


async def reconfigure(
    platform: Platform, record: FunctionRecord, changes: dict[str, Any]
) -> FunctionRecord:
    """$LATEST's code with its mlambda.toml changed (a None value removes the key)."""
    files, current = await _table_of(platform, record)
    table = {k: v for k, v in {**current, **changes}.items() if v is not None}
    return await _deploy(platform, record.name, files, table)


@aws_route
async def update_function_code(request: Request) -> Response:
    """New code for $LATEST; the configuration stays, except what the new zip's own
    mlambda.toml sets."""
    platform = platform_of(request)
    name, _ = target(request)
    body = await json_body(request, _zip_limit(platform))
    record = platform.current(name)
    _check_revision(record, body)
    shapes.config_fields({"Architectures": body.get("Architectures")})  # the host's only
    files = await asyncio.to_thread(lambda_zip.read_zip, decode_zip(body), platform.unpack_limits)
    _, current = await _table_of(platform, record)
    table = {**current, **lambda_zip.function_table(files)}
    if body.get("DryRun"):
        await asyncio.to_thread(lambda_zip.with_table, files, {**table, "name": name})
        return JSONResponse(configuration(platform, record))
    record = await _deploy(platform, name, files, table)
    if body.get("Publish"):
        record = _publish(platform, record)
    return JSONResponse(configuration(platform, record))


@aws_route
async def update_function_configuration(request: Request) -> Response:
    platform = platform_of(request)
    name, _ = target(request)
    body = await json_body(request)
    record = platform.current(name)
    _check_revision(record, body)
    fields = shapes.config_fields(body, ignore=("FunctionName", "RevisionId"))
    record = await reconfigure(platform, record, fields)
    return JSONResponse(configuration(platform, record))


@aws_route
async def delete_function(request: Request) -> Response:
    """The whole function, or (``Qualifier=N``) one version; an alias is DeleteAlias's."""
    platform = platform_of(request)
    name, qualifier = target(request)
    if qualifier and qualifier != LATEST and not is_version(qualifier):
        raise InvalidSpec(
            f"Qualifier {qualifier!r} names an alias: delete it with DeleteAlias, or give a "
            "version number"
        )
    if qualifier:
        await platform.versions.delete_version(name, qualifier)
        terminal.info("delete %s version %s (Lambda API)", name, qualifier)
    else:
        platform.current(name)  # Lambda's not-found message, with the ARN
        record = await platform.remove(name)
        terminal.info("delete %s %s (Lambda API)", record.name, record.digest[:19])
    return Response(status_code=204)


@aws_route
async def get_account_settings(request: Request) -> Response:
    platform = platform_of(request)
    settings = platform.settings
    digests = platform.registry.digests_in_use()
    total = sum(await asyncio.to_thread(lambda: [_code_size(platform, d) for d in digests]))
    return JSONResponse(
        {
            "AccountLimit": {
                "CodeSizeUnzipped": settings.max_unpacked_bytes,
                "CodeSizeZipped": settings.max_bundle_bytes,
                "ConcurrentExecutions": platform.concurrency.limit,
                "UnreservedConcurrentExecutions": platform.concurrency.unreserved,
            },
            "AccountUsage": {
                "TotalCodeSize": total,
                "FunctionCount": len(platform.registry.list()),
            },
        }
    )
