"""The Lambda API's event invoke config (``/2019-09-25/functions/{name}/event-invoke-config``):
Put, Update, Get, Delete and List, as boto3 and the AWS CLI call them. What the API sets
overrides ``[function.async]`` from mlambda.toml, and outlives redeploys."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import FunctionNotFound, InvalidSpec, MlambdaError
from mlambda.events.invoke_config import from_lambda, to_lambda
from mlambda.gateway.body import read_object
from mlambda.gateway.lambda_api.common import aws_error
from mlambda.platform import Platform
from mlambda.registry.model import LATEST, merge_qualifiers
from mlambda.security.permissions import function_ref

MAX_BODY = 64 * 1024


def _function(request: Request, platform: Platform) -> str:
    name, in_name = function_ref(request.path_params["name"])
    qualifier = merge_qualifiers(in_name, request.query_params.get("Qualifier"))
    platform.get(name)
    if qualifier not in ("", LATEST):
        raise InvalidSpec(
            f"an event invoke config applies to the whole function in mlambda, not to "
            f"{name}:{qualifier}: leave out the qualifier"
        )
    return name


async def event_invoke_config(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    try:
        name = _function(request, platform)
        if request.method in ("PUT", "POST"):
            body = await read_object(request, MAX_BODY)
            configs = platform.async_configs
            base = configs.config(name) if request.method == "POST" else None
            configs.put(name, from_lambda(body, name, base))
        elif request.method == "DELETE":
            if not platform.async_configs.delete(name):
                raise _none(name)
            return Response(status_code=204)
        found = platform.async_configs.entry(name)
        if found is None:
            raise _none(name)
        config, modified = found
        return JSONResponse(to_lambda(config, name, platform.settings.region, modified))
    except MlambdaError as exc:
        return aws_error(exc)


async def list_event_invoke_configs(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    try:
        name = _function(request, platform)
    except MlambdaError as exc:
        return aws_error(exc)
    found = platform.async_configs.entry(name)
    configs = []
    if found is not None:
        config, modified = found
        configs.append(to_lambda(config, name, platform.settings.region, modified))
    return JSONResponse({"FunctionEventInvokeConfigs": configs})


def _none(name: str) -> FunctionNotFound:
    return FunctionNotFound(f"The function {name} doesn't have an EventInvokeConfig")
