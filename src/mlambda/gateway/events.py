"""Events from outside: ``POST /v1/events`` (the event bus, PutEvents' entries), ``POST
/v1/events/s3`` (S3 event notifications, as MinIO's webhook target and S3-compatible stores
send them) and EventBridge's JSON protocol at ``POST /`` (``X-Amz-Target: AWSEvents.PutEvents``:
boto3's ``events`` client and the AWS CLI pointed at the platform). Each needs a key with the
``events`` scope (or admin)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import Forbidden, MlambdaError, PayloadTooLarge, Unauthorized
from mlambda.gateway.auth import require
from mlambda.gateway.body import read_object
from mlambda.security.keys import Need

MAX_BODY = 4 * 1024 * 1024  # ten entries of 256 KiB, or a notification of many records
TARGET = "AWSEvents."
CONTENT_TYPE = "application/x-amz-json-1.1"


async def put_events(request: Request) -> Response:
    body = await read_object(request, MAX_BODY)
    return JSONResponse(await request.app.state.platform.triggers.put_events(body))


async def s3_notification(request: Request) -> Response:
    body = await read_object(request, MAX_BODY)
    return JSONResponse(await request.app.state.platform.triggers.notify(body))


def error_response(code: str, message: str, status: int = 400) -> Response:
    return JSONResponse(
        {"__type": code, "message": message},
        status_code=status,
        headers={"x-amzn-ErrorType": code},
        media_type=CONTENT_TYPE,
    )


async def aws_events(request: Request) -> Response:
    """EventBridge's JSON protocol: PutEvents, the one operation of the bus."""
    operation = request.headers.get("x-amz-target", "").removeprefix(TARGET)
    if operation != "PutEvents":
        return error_response(
            "UnknownOperationException", f"{operation}: this endpoint serves PutEvents"
        )
    try:
        require(request, Need("events"))
        body = await read_object(request, MAX_BODY)
        answer = await request.app.state.platform.triggers.put_events(body)
        return JSONResponse(answer, media_type=CONTENT_TYPE)
    except (Forbidden, Unauthorized) as exc:
        return error_response("AccessDeniedException", exc.message)
    except PayloadTooLarge as exc:
        return error_response("ValidationException", exc.message, 413)
    except MlambdaError as exc:
        if exc.status >= 500:
            raise
        return error_response("ValidationException", exc.message)
