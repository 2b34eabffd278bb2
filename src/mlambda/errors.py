"""The one error tree of mlambda.

Every error a user can meet is one of these classes; each knows the HTTP status the gateway
answers with, the Lambda-style ``errorType`` in the body, and the exit code of the CLI::

    MlambdaError                      500  ServiceException
    ├── ClientError                   400
    │   ├── InvalidRequest            400  InvalidRequestContentException (body is not JSON...)
    │   ├── InvalidSpec               400  InvalidParameterValueException (mlambda.toml, bundle)
    │   ├── Unauthorized              401  UnauthorizedException (Lambda API: 403 and the AWS type)
    │   ├── Forbidden                 403  AccessDeniedException (the key lacks the scope)
    │   ├── NotFound                  404  ResourceNotFoundException
    │   │   └── FunctionNotFound      404  ResourceNotFoundException
    │   ├── PayloadTooLarge           413  RequestTooLargeException
    │   └── Throttled                 429  TooManyRequestsException (Retry-After)
    ├── FunctionError                 502  the function failed; body is Lambda's error payload
    │   ├── InitError                 502  Runtime.InitError / ImportModuleError / HandlerNotFound
    │   ├── ExitError                 502  Runtime.ExitError / Runtime.OutOfMemory (it died)
    │   └── FunctionTimeout           504  Sandbox.Timedout
    ├── ArtifactCorrupted             500  ArtifactCorruptedException
    ├── ServiceUnavailable            503  ServiceUnavailableException
    └── ConnectionFailed (CLI only)        the server could not be reached
"""

from __future__ import annotations

from typing import Any, ClassVar

# The response header that marks a function error, as API Gateway marks a failed Lambda.
FUNCTION_ERROR_HEADER = "X-Mlambda-Function-Error"


class MlambdaError(Exception):
    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "ServiceException"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, error_type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error_type is not None:
            self.error_type = error_type  # type: ignore[misc]

    def to_body(self) -> dict[str, Any]:
        return {"errorType": self.error_type, "errorMessage": self.message}


class ClientError(MlambdaError):
    status = 400
    error_type = "InvalidRequestContentException"
    exit_code = 2


class InvalidRequest(ClientError):
    pass


class InvalidSpec(ClientError):
    error_type = "InvalidParameterValueException"


class Unauthorized(ClientError):
    status = 401
    error_type = "UnauthorizedException"
    exit_code = 5


class Forbidden(ClientError):
    status = 403
    error_type = "AccessDeniedException"
    exit_code = 5


class NotFound(ClientError):
    status = 404
    error_type = "ResourceNotFoundException"
    exit_code = 4


class FunctionNotFound(NotFound):
    pass


class Conflict(ClientError):
    """The resource is in a state that refuses the change (an alias still points at it...)."""

    status = 409
    error_type = "ResourceConflictException"


class PreconditionFailed(ClientError):
    """A RevisionId (or CodeSha256) given as a precondition no longer matches."""

    status = 412
    error_type = "PreconditionFailedException"


class PayloadTooLarge(ClientError):
    status = 413
    error_type = "RequestTooLargeException"


class Throttled(ClientError):
    status = 429
    error_type = "TooManyRequestsException"
    exit_code = 6

    def __init__(
        self, message: str, *, retry_after: float | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message, error_type=error_type)
        # Seconds until a retry can succeed (the Retry-After header), when it is known.
        self.retry_after = retry_after


class FunctionError(MlambdaError):
    """The function itself failed. ``payload`` is the body Lambda would return."""

    status = 502
    error_type = "Unhandled"
    exit_code = 3

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(
            str(payload.get("errorMessage", "")), error_type=str(payload.get("errorType", "Error"))
        )
        self.payload = payload

    def to_body(self) -> dict[str, Any]:
        return self.payload


class InitError(FunctionError):
    pass


class ExitError(FunctionError):
    pass


class FunctionTimeout(FunctionError):
    status = 504


class InvalidModelInput(FunctionError):
    """A model function's input did not match the model's signature: the caller's fault."""

    status = 400
    payload_type = "Model.InvalidInput"


def function_error(payload: dict[str, Any]) -> FunctionError:
    """The error for a failure an instance reported."""
    if payload.get("errorType") == InvalidModelInput.payload_type:
        return InvalidModelInput(payload)
    return FunctionError(payload)


class ArtifactCorrupted(MlambdaError):
    error_type = "ArtifactCorruptedException"


class ServiceUnavailable(MlambdaError):
    status = 503
    error_type = "ServiceUnavailableException"


class ConnectionFailed(MlambdaError):
    exit_code = 7


_BY_TYPE: dict[str, type[MlambdaError]] = {
    cls.error_type: cls
    for cls in (
        InvalidRequest,
        InvalidSpec,
        Unauthorized,
        Forbidden,
        FunctionNotFound,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        Throttled,
        ArtifactCorrupted,
        ServiceUnavailable,
    )
}


def from_response(status: int, body: dict[str, Any], function_error: bool) -> MlambdaError:
    """Rebuild the error a server answered with (the client side of ``to_body``)."""
    if function_error:
        error_type = str(body.get("errorType", ""))
        cls: type[FunctionError] = FunctionError
        if status == 504:
            cls = FunctionTimeout
        elif error_type == InvalidModelInput.payload_type:
            cls = InvalidModelInput
        elif error_type in ("Runtime.ExitError", "Runtime.OutOfMemory"):
            cls = ExitError
        elif error_type.startswith("Runtime.") and error_type != "Runtime.MarshalError":
            cls = InitError
        return cls(body)
    error_type = str(body.get("errorType", "ServiceException"))
    message = str(body.get("errorMessage", f"HTTP {status}"))
    return _BY_TYPE.get(error_type, MlambdaError)(message, error_type=error_type)
