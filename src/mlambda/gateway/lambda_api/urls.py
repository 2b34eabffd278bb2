"""The Lambda API's function URL config (Create/Get/Update/DeleteFunctionUrlConfig) over
``[function.url]`` of $LATEST. Every function answers at ``/fn/NAME/`` to a key that may invoke
it; the config is what AuthType NONE (public) and CORS change. An alias's URL
(``/fn/NAME:ALIAS/``) serves with the config of the version it routes to."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import Conflict, InvalidSpec, NotFound
from mlambda.gateway.lambda_api import shapes
from mlambda.gateway.lambda_api.common import aws_route, json_body, platform_of, target
from mlambda.gateway.lambda_api.functions import reconfigure
from mlambda.platform import Platform
from mlambda.registry.model import LATEST, FunctionRecord
from mlambda.urlconfig import UrlSpec


def _latest(request: Request) -> tuple[Platform, FunctionRecord, str]:
    platform = platform_of(request)
    name, qualifier = target(request)
    if qualifier and qualifier != LATEST:
        raise InvalidSpec(
            f"a function URL config is kept for $LATEST here; /fn/{name}:{qualifier}/ serves "
            "with the config of the version it routes to (publish after setting it)"
        )
    return platform, platform.current(name), qualifier


def _shape(request: Request, record: FunctionRecord, qualifier: str, url: UrlSpec) -> dict:
    return shapes.url_configuration(
        record.name,
        qualifier,
        url,
        str(request.base_url),
        platform_of(request).settings.region,
        record.created_at,
    ) | {"LastModifiedTime": shapes.lambda_time(record.updated_at)}


def _missing(record: FunctionRecord) -> NotFound:
    return NotFound(f"The resource you requested does not exist. (function URL of {record.name})")


@aws_route
async def create_url_config(request: Request) -> Response:
    platform, record, qualifier = _latest(request)
    if record.spec.url is not None:
        raise Conflict(f"Failed to create function url config for [functionArn = {record.name}]")
    body = await json_body(request)
    if "AuthType" not in body:
        raise InvalidSpec("AuthType is required (NONE or AWS_IAM)")
    record = await reconfigure(platform, record, {"url": shapes.url_table(body, None)})
    assert record.spec.url is not None
    return JSONResponse(_shape(request, record, qualifier, record.spec.url), status_code=201)


@aws_route
async def get_url_config(request: Request) -> Response:
    _, record, qualifier = _latest(request)
    if record.spec.url is None:
        raise _missing(record)
    return JSONResponse(_shape(request, record, qualifier, record.spec.url))


@aws_route
async def update_url_config(request: Request) -> Response:
    platform, record, qualifier = _latest(request)
    if record.spec.url is None:
        raise _missing(record)
    body = await json_body(request)
    record = await reconfigure(platform, record, {"url": shapes.url_table(body, record.spec.url)})
    assert record.spec.url is not None
    return JSONResponse(_shape(request, record, qualifier, record.spec.url))


@aws_route
async def delete_url_config(request: Request) -> Response:
    platform, record, _ = _latest(request)
    if record.spec.url is None:
        raise _missing(record)
    await reconfigure(platform, record, {"url": None})
    return Response(status_code=204)
