"""The single mapping from results and errors to HTTP responses."""

from __future__ import annotations

import math

from starlette.responses import JSONResponse, Response

from mlambda.errors import FUNCTION_ERROR_HEADER, FunctionError, MlambdaError, Throttled
from mlambda.pool.invocation import Invocation

REQUEST_ID_HEADER = "X-Mlambda-Request-Id"
# Which version ran ($LATEST or a number): an alias picks one per call.
VERSION_HEADER = "X-Amz-Executed-Version"


def error_response(exc: MlambdaError, request_id: str | None = None) -> JSONResponse:
    headers = {}
    if isinstance(exc, FunctionError):
        # As API Gateway answers for a failed Lambda, the header says the function failed.
        headers[FUNCTION_ERROR_HEADER] = "Unhandled"
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    headers.update(retry_headers(exc))
    return JSONResponse(exc.to_body(), status_code=exc.status, headers=headers)


def retry_headers(exc: MlambdaError) -> dict[str, str]:
    """Retry-After (whole seconds, rounded up) for a throttle that knows when to come back."""
    if isinstance(exc, Throttled) and exc.retry_after is not None:
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    return {}


def invocation_response(invocation: Invocation) -> Response:
    if invocation.error is not None:
        response: Response = error_response(invocation.error, invocation.request_id)
        response.headers[VERSION_HEADER] = invocation.version
        return response
    return Response(
        invocation.body,
        media_type="application/json",
        headers={REQUEST_ID_HEADER: invocation.request_id, VERSION_HEADER: invocation.version},
    )


def unexpected_error() -> JSONResponse:
    """A fault in mlambda itself: the traceback goes to the server log, not the client."""
    return JSONResponse(
        {
            "errorType": "ServiceException",
            "errorMessage": "Internal error in mlambda; the server log has the details",
        },
        status_code=500,
    )
