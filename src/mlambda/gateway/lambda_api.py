"""The AWS Lambda Invoke API (``POST /2015-03-31/functions/{name}/invocations``), as boto3's
``lambda.invoke`` and ``aws lambda invoke`` speak it (signed with SigV4, see ``sigv4``)."""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import InvalidSpec, MlambdaError, Unauthorized
from mlambda.gateway.body import check_json, read_body
from mlambda.gateway.responses import retry_headers
from mlambda.observe.observer import log_lines
from mlambda.platform import Platform
from mlambda.security.permissions import function_name

# Lambda returns the last 4 KB of the invocation's log with X-Amz-Log-Type: Tail.
TAIL_BYTES = 4096


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
    name = function_name(request.path_params["name"])
    kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
    record = platform.get(name)
    if kind == "DryRun":
        return Response(status_code=204)
    if kind != "RequestResponse":
        raise InvalidSpec(
            f"InvocationType {kind!r} is not supported: asynchronous (Event) invocation is not "
            "built yet; use RequestResponse"
        )
    payload = await read_body(request, platform.settings.max_payload_bytes)
    check_json(payload)
    client_context = request.headers.get("x-amz-client-context")
    if client_context:
        client_context = base64.b64decode(client_context).decode("utf-8", errors="replace")
    invocation = await platform.invoke(name, payload, client_context=client_context)
    headers = {"X-Amz-Executed-Version": record.version}
    if request.headers.get("x-amz-log-type") == "Tail":
        text = "".join(f"{line}\n" for line in log_lines(record, invocation)).encode()
        headers["X-Amz-Log-Result"] = base64.b64encode(text[-TAIL_BYTES:]).decode()
    if invocation.error is not None:
        # As Lambda: the invoke succeeded (200); the function's failure is in header and body.
        headers["X-Amz-Function-Error"] = "Unhandled"
        return JSONResponse(invocation.error.to_body(), headers=headers)
    return Response(invocation.body, media_type="application/json", headers=headers)
