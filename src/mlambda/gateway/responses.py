"""The single mapping from results and errors to HTTP responses."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from mlambda.errors import FUNCTION_ERROR_HEADER, FunctionError, MlambdaError
from mlambda.pool.invocation import Invocation

REQUEST_ID_HEADER = "X-Mlambda-Request-Id"


def error_response(exc: MlambdaError, request_id: str | None = None) -> JSONResponse:
    headers = {}
    if isinstance(exc, FunctionError):
        # As API Gateway answers for a failed Lambda, the header says the function failed.
        headers[FUNCTION_ERROR_HEADER] = "Unhandled"
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return JSONResponse(exc.to_body(), status_code=exc.status, headers=headers)


def invocation_response(invocation: Invocation) -> Response:
    if invocation.error is not None:
        return error_response(invocation.error, invocation.request_id)
    return Response(
        invocation.body,
        media_type="application/json",
        headers={REQUEST_ID_HEADER: invocation.request_id},
    )
