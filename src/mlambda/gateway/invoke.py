"""Invoke routes: the JSON invoke API and function URLs."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import FunctionError, InvalidRequest
from mlambda.gateway import cors, function_url
from mlambda.gateway.body import check_json, read_body
from mlambda.gateway.responses import (
    REQUEST_ID_HEADER,
    VERSION_HEADER,
    error_response,
    invocation_response,
)
from mlambda.gateway.tracing import trace_of
from mlambda.platform import Platform
from mlambda.registry.model import LATEST, merge_qualifiers
from mlambda.security.permissions import function_ref


def _platform(request: Request) -> Platform:
    return request.app.state.platform


async def invoke(request: Request) -> Response:
    platform = _platform(request)
    mode = request.query_params.get("mode", "sync")
    if mode not in ("sync", "async"):
        raise InvalidRequest(f"mode must be 'sync' or 'async', got {mode!r}")
    if mode == "async":
        return await _accept(request, platform)
    payload = await read_body(request, platform.settings.max_payload_bytes)
    check_json(payload)
    # ?proba=1: a model function answers with predict_proba (where the model has it).
    params = {k: v for k, v in request.query_params.items() if k == "proba"}
    name, qualifier = _target(request)
    invocation = await platform.invoke(
        name, payload, params=params, qualifier=qualifier, trace=trace_of(request.scope)
    )
    return invocation_response(invocation)


def _target(request: Request) -> tuple[str, str]:
    """NAME, NAME:VERSION or NAME:ALIAS in the path, or ?qualifier= -> (name, qualifier)."""
    name, in_name = function_ref(request.path_params["name"])
    return name, merge_qualifiers(in_name, request.query_params.get("qualifier"))


async def _accept(request: Request, platform: Platform) -> Response:
    """?mode=async: 202 once the event is stored; run at least once (docs/async.md)."""
    name, qualifier = _target(request)
    # An alias picks its version now; an unknown function is refused before anything is stored.
    version = platform.router.resolve(name, qualifier)
    platform.current(name, version)
    payload = await read_body(request, platform.settings.max_async_payload_bytes)
    check_json(payload)
    event = await platform.async_invoker.accept(
        name,
        payload,
        request.headers.get("idempotency-key"),
        version="" if version == LATEST else version,
        trace=trace_of(request.scope),
    )
    return JSONResponse(
        {"invocation_id": event.id, "state": event.state},
        status_code=202,
        headers={REQUEST_ID_HEADER: event.id, "Location": f"/v1/invocations/{event.id}"},
    )


async def function_url_request(request: Request) -> Response:
    """/fn/NAME/... calls $LATEST; /fn/NAME:ALIAS/... (or :VERSION) what the alias routes to."""
    platform = _platform(request)
    name, qualifier = function_ref(request.path_params["name"])
    url = platform.url_config(name, qualifier)
    settings = url.cors if url is not None else None
    if settings is not None and cors.is_preflight(request.method, dict(request.headers)):
        return Response(status_code=200, headers=dict(cors.preflight(settings, request.headers)))
    response = await _call_url(request, platform, name, qualifier)
    if settings is not None:
        # As Lambda: with CORS configured, the URL's settings replace the function's own.
        for key in [k for k in response.headers if k.startswith("access-control-")]:
            del response.headers[key]
        for key, value in cors.response_headers(settings, request.headers.get("origin")):
            response.headers.append(key, value)
    return response


async def _call_url(request: Request, platform: Platform, name: str, qualifier: str) -> Response:
    body = await read_body(request, platform.settings.max_payload_bytes)
    # The key that authenticated this request is not the function's to see.
    authenticated = "principal" in request.scope.get("state", {}) and platform.api_key
    headers = [
        (k, v) for k, v in request.headers.items() if not (k == "authorization" and authenticated)
    ]
    event = function_url.build_event(
        method=request.method,
        raw_path="/" + request.path_params.get("path", ""),
        raw_query=request.url.query,
        headers=headers,
        body=body,
        source_ip=request.client.host if request.client else "127.0.0.1",
        function_name=name,
    )
    invocation = await platform.invoke(
        name, json.dumps(event).encode(), qualifier=qualifier, trace=trace_of(request.scope)
    )
    if invocation.error is not None:
        return invocation_response(invocation)
    try:
        result = function_url.parse_result(invocation.body)
    except (ValueError, TypeError, KeyError) as exc:
        error = FunctionError(
            {
                "errorType": "Function.InvalidResponse",
                "errorMessage": f"The function returned an invalid HTTP response: {exc}",
            }
        )
        return error_response(error, invocation.request_id)
    response = Response(result.body, status_code=result.status)
    for key, value in result.headers:
        response.headers.append(key, value)
    response.headers[REQUEST_ID_HEADER] = invocation.request_id
    response.headers[VERSION_HEADER] = invocation.version
    return response
