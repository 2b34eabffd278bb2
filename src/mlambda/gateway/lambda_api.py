"""The AWS Lambda Invoke API (``POST /2015-03-31/functions/{name}/invocations``), as boto3's
``lambda.invoke`` and ``aws lambda invoke`` speak it (signed with SigV4, see ``sigv4``)."""

from __future__ import annotations

import base64
import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import (
    InvalidSpec,
    MlambdaError,
    NotFound,
    Unauthorized,
)
from mlambda.gateway.body import check_json, read_body
from mlambda.gateway.responses import retry_headers
from mlambda.observe.observer import log_lines
from mlambda.platform import Platform
from mlambda.registry.model import LATEST, merge_qualifiers
from mlambda.security.permissions import function_ref

# Lambda returns the last 4 KB of the invocation's log with X-Amz-Log-Type: Tail.
TAIL_BYTES = 4096
# Lambda API calls that are not served here, by name, so a client is told which one it made.
_F = r"/2015-03-31/functions/[^/]+"
OPERATIONS = tuple(
    (method, re.compile(path + "/?"), name)
    for method, path, name in (
        ("GET", "/2015-03-31/functions", "ListFunctions"),
        ("POST", "/2015-03-31/functions", "CreateFunction"),
        ("GET", _F, "GetFunction"),
        ("DELETE", _F, "DeleteFunction"),
        ("GET", f"{_F}/configuration", "GetFunctionConfiguration"),
        ("PUT", f"{_F}/configuration", "UpdateFunctionConfiguration"),
        ("PUT", f"{_F}/code", "UpdateFunctionCode"),
        ("GET", f"{_F}/versions", "ListVersionsByFunction"),
        ("POST", f"{_F}/versions", "PublishVersion"),
        ("GET", f"{_F}/aliases", "ListAliases"),
        ("POST", f"{_F}/aliases", "CreateAlias"),
        ("GET", f"{_F}/aliases/[^/]+", "GetAlias"),
        ("GET", f"{_F}/policy", "GetPolicy"),
        ("POST", f"{_F}/policy", "AddPermission"),
        ("GET", r"/2015-03-31/event-source-mappings", "ListEventSourceMappings"),
        ("POST", r"/2015-03-31/event-source-mappings", "CreateEventSourceMapping"),
        ("POST", r"/2014-11-13/functions/[^/]+/invoke-async", "InvokeAsync"),
        (
            "POST",
            r"/2021-11-15/functions/[^/]+/response-streaming-invocations",
            "InvokeWithResponseStream",
        ),
        ("GET", r"/2021-10-31/functions/[^/]+/url", "GetFunctionUrlConfig"),
        ("GET", r"/2016-08-19/account-settings", "GetAccountSettings"),
    )
)


class UnknownOperation(NotFound):
    error_type = "UnknownOperationException"


def unknown_operation(method: str, path: str) -> Response:
    """What a Lambda API call that is not served here gets: an error botocore parses."""
    name = next((n for m, p, n in OPERATIONS if m == method and p.fullmatch(path)), "")
    called = f"{name} ({method} {path})" if name else f"{method} {path}"
    return aws_error(
        UnknownOperation(
            f"The Lambda API operation {called} is not available in mlambda; of the Lambda API "
            "it serves Invoke. The rest is in the mlambda API (/openapi.json)."
        )
    )


def aws_error(exc: MlambdaError) -> Response:
    """Errors in the shape AWS clients parse: the type in a header and in the body. AWS answers
    a failed authentication with 403 and a type botocore knows."""
    status, error_type = exc.status, exc.error_type
    if isinstance(exc, Unauthorized):
        status = 403
        if error_type == Unauthorized.error_type:
            error_type = "UnrecognizedClientException"
    body = {"Type": "User", "message": exc.message, **exc.to_body(), "errorType": error_type}
    headers = {"x-amzn-ErrorType": error_type, **retry_headers(exc)}
    return JSONResponse(body, status_code=status, headers=headers)


async def invoke(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    try:
        return await _invoke(request, platform)
    except MlambdaError as exc:
        return aws_error(exc)


async def _invoke(request: Request, platform: Platform) -> Response:
    name, in_name = function_ref(request.path_params["name"])
    qualifier = merge_qualifiers(in_name, request.query_params.get("Qualifier"))
    kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
    if kind in ("DryRun", "Event"):
        # An alias picks its version now: an event runs the version chosen at accept.
        version = platform.router.resolve(name, qualifier)
        platform.current(name, version)  # a version that does not exist is refused here
        if kind == "DryRun":
            return Response(status_code=204)
        # Stored before the 202; a retry of this same call (botocore keeps the id) is not new.
        payload = await read_body(request, platform.settings.max_async_payload_bytes)
        check_json(payload)
        key = request.headers.get("amz-sdk-invocation-id")
        event = await platform.async_invoker.accept(
            name, payload, key, version="" if version == LATEST else version
        )
        return Response(status_code=202, headers={"x-amzn-RequestId": event.id})
    if kind != "RequestResponse":
        raise InvalidSpec(
            f"InvocationType {kind!r} is not supported: use RequestResponse, Event or DryRun"
        )
    payload = await read_body(request, platform.settings.max_payload_bytes)
    check_json(payload)
    client_context = request.headers.get("x-amz-client-context")
    if client_context:
        client_context = base64.b64decode(client_context).decode("utf-8", errors="replace")
    invocation = await platform.invoke(
        name, payload, client_context=client_context, qualifier=qualifier
    )
    headers = {"X-Amz-Executed-Version": invocation.version}
    if request.headers.get("x-amz-log-type") == "Tail":
        record = platform.current(name, invocation.version)
        text = "".join(f"{line}\n" for line in log_lines(record, invocation)).encode()
        headers["X-Amz-Log-Result"] = base64.b64encode(text[-TAIL_BYTES:]).decode()
    if invocation.error is not None:
        # As Lambda: the invoke succeeded (200); the function's failure is in header and body.
        headers["X-Amz-Function-Error"] = "Unhandled"
        return JSONResponse(invocation.error.to_body(), headers=headers)
    return Response(invocation.body, media_type="application/json", headers=headers)
