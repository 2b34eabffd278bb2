"""The Lambda API's concurrency controls: Put/Get/DeleteFunctionConcurrency (reserved) and
Put/Get/Delete/ListProvisionedConcurrencyConfig(s), over the same settings as
``mlambda concurrency``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import InvalidSpec, NotFound
from mlambda.gateway.lambda_api import shapes
from mlambda.gateway.lambda_api.common import aws_route, json_body, platform_of, target
from mlambda.observe.observer import terminal
from mlambda.registry.concurrency import Provisioned
from mlambda.runtime.context import function_arn


class ConfigNotFound(NotFound):
    error_type = "ProvisionedConcurrencyConfigNotFoundException"


def _count(body: dict[str, Any], field: str) -> int:
    value = body.get(field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSpec(f"{field} is required: an integer")
    return value


@aws_route
async def put_function_concurrency(request: Request) -> Response:
    name, _ = target(request)
    reserved = _count(await json_body(request), "ReservedConcurrentExecutions")
    platform_of(request).provisioning.reserve(name, reserved)
    terminal.info("concurrency %s reserved %d (Lambda API)", name, reserved)
    return JSONResponse({"ReservedConcurrentExecutions": reserved})


@aws_route
async def get_function_concurrency(request: Request) -> Response:
    name, _ = target(request)
    reserved = platform_of(request).provisioning.reserved(name)
    return JSONResponse({} if reserved is None else {"ReservedConcurrentExecutions": reserved})


@aws_route
async def delete_function_concurrency(request: Request) -> Response:
    name, _ = target(request)
    platform_of(request).provisioning.reserve(name, None)
    return Response(status_code=204)


def _shape(request: Request, config: Provisioned, listed: bool = False) -> dict[str, Any]:
    status = platform_of(request).provisioning.status(config)
    shape: dict[str, Any] = {
        "RequestedProvisionedConcurrentExecutions": status["requested"],
        "AvailableProvisionedConcurrentExecutions": status["available"],
        "AllocatedProvisionedConcurrentExecutions": status["available"],
        "Status": status["status"],
        "LastModified": shapes.lambda_time(config.updated_at),
    }
    if listed:
        region = platform_of(request).settings.region
        shape["FunctionArn"] = function_arn(config.function, config.qualifier, region)
    return shape


def _qualifier(request: Request) -> tuple[str, str]:
    name, qualifier = target(request)
    if not qualifier:
        raise InvalidSpec("Qualifier is required: a version number or an alias")
    return name, qualifier


@aws_route
async def put_provisioned(request: Request) -> Response:
    name, qualifier = _qualifier(request)
    requested = _count(await json_body(request), "ProvisionedConcurrentExecutions")
    provisioning = platform_of(request).provisioning
    await provisioning.provision(name, qualifier, requested)
    terminal.info("concurrency %s:%s provisioned %d (Lambda API)", name, qualifier, requested)
    (config,) = provisioning.provisioned(name, qualifier)
    return JSONResponse(_shape(request, config), status_code=202)


@aws_route
async def get_provisioned(request: Request) -> Response:
    """GetProvisionedConcurrencyConfig, or with ``?List=ALL`` ListProvisionedConcurrencyConfigs."""
    provisioning = platform_of(request).provisioning
    if request.query_params.get("List") == "ALL":
        name, _ = target(request)
        configs = provisioning.provisioned(name)
        return JSONResponse(
            {"ProvisionedConcurrencyConfigs": [_shape(request, c, True) for c in configs]}
        )
    name, qualifier = _qualifier(request)
    try:
        (config,) = provisioning.provisioned(name, qualifier)
    except NotFound as exc:
        raise ConfigNotFound(exc.message) from None
    return JSONResponse(_shape(request, config))


@aws_route
async def delete_provisioned(request: Request) -> Response:
    name, qualifier = _qualifier(request)
    await platform_of(request).provisioning.provision(name, qualifier, None)
    return Response(status_code=204)
