"""The AWS Lambda Invoke API (``POST /2015-03-31/functions/{name}/invocations``), as boto3's
``lambda.invoke`` and ``aws lambda invoke`` speak it (signed with SigV4, see ``sigv4``)."""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import FunctionError, InvalidSpec, MlambdaError
from mlambda.gateway.body import check_json, read_body
from mlambda.gateway.lambda_api.common import aws_error
from mlambda.gateway.lambda_api.retries import call_key
from mlambda.gateway.tracing import trace_of
from mlambda.observe.observer import log_lines
from mlambda.platform import Platform
from mlambda.registry.model import LATEST, merge_qualifiers
from mlambda.security.permissions import function_ref

# Lambda returns the last 4 KB of the invocation's log with X-Amz-Log-Type: Tail.
TAIL_BYTES = 4096


async def invoke(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    try:
        return await _invoke(request, platform)
    except FunctionError as exc:
        # An init that failed (InitError, an exit during init) fails the call as on Lambda:
        # 200, Unhandled, the error as the payload; not an error of the API.
        return JSONResponse(exc.to_body(), headers={"X-Amz-Function-Error": "Unhandled"})
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
            name,
            payload,
            key,
            version="" if version == LATEST else version,
            trace=trace_of(request.scope),
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
    # botocore sends a call again (same amz-sdk-invocation-id) after its read timeout: the
    # retry attaches to the first execution instead of running the function twice.
    invocation_id = request.headers.get("amz-sdk-invocation-id")
    principal = request.scope.get("state", {}).get("principal")
    call = (
        call_key(principal.key_id if principal else "", name, qualifier, invocation_id, payload)
        if invocation_id
        else None
    )
    invocation = await request.app.state.sync_calls.run(
        call,
        lambda: platform.invoke(
            name,
            payload,
            client_context=client_context,
            qualifier=qualifier,
            trace=trace_of(request.scope),
        ),
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
