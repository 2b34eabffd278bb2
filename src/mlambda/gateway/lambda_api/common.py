"""What every Lambda API route shares: errors in the shape botocore parses, JSON bodies,
the record a qualifier names, and pagination by Marker."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import InvalidSpec, MlambdaError, Unauthorized
from mlambda.gateway.body import read_object
from mlambda.gateway.responses import retry_headers
from mlambda.platform import Platform
from mlambda.registry.model import LATEST, FunctionRecord, is_version, merge_qualifiers
from mlambda.security.permissions import function_ref

Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")
MAX_ITEMS = 50  # Lambda's page size for ListFunctions and the other lists
MAX_CONFIG_BODY = 256 * 1024


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


def aws_route(handler: Handler) -> Handler:
    """A Lambda API route: its errors answer as Lambda's do."""

    @functools.wraps(handler)
    async def route(request: Request) -> Response:
        try:
            return await handler(request)
        except MlambdaError as exc:
            return aws_error(exc)

    return route


def platform_of(request: Request) -> Platform:
    return request.app.state.platform


async def json_body(request: Request, limit: int = MAX_CONFIG_BODY) -> dict[str, Any]:
    return await read_object(request, limit)


def target(request: Request, query: str = "Qualifier") -> tuple[str, str]:
    """The path's FunctionName (a name, NAME:Q or an ARN) and the qualifier it or ?Qualifier=
    names -> (name, qualifier)."""
    name, in_name = function_ref(request.path_params["name"])
    return name, merge_qualifiers(in_name, request.query_params.get(query))


def record_for(platform: Platform, name: str, qualifier: str) -> FunctionRecord:
    """The record a qualifier names: $LATEST, a version, or an alias's main version."""
    version = platform.router.main_version(name, qualifier)
    return platform.current(name, version)


def version_of(qualifier: str) -> str:
    return qualifier or LATEST


def decode_zip(code: Any) -> bytes:
    """Code.ZipFile (base64, as botocore sends a blob in JSON); other code sources refused."""
    if not isinstance(code, dict):
        raise InvalidSpec("Code must be an object with ZipFile")
    for field in ("S3Bucket", "S3Key", "ImageUri"):
        if code.get(field):
            raise InvalidSpec(
                f"Code.{field} is not supported here: send the zip itself as Code.ZipFile"
            )
    raw = code.get("ZipFile")
    if not isinstance(raw, str) or not raw:
        raise InvalidSpec("Code.ZipFile is required (the zip, base64)")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSpec("Code.ZipFile is not valid base64") from None


def page(request: Request, items: Sequence[T], key: Callable[[T], str]) -> tuple[list[T], str]:
    """One page of ``items`` (sorted by ``key``) after ?Marker=, at most ?MaxItems=; the next
    page's marker ("" at the end). A marker is the key of the first item of its page."""
    raw = request.query_params.get("MaxItems", str(MAX_ITEMS))
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise InvalidSpec(f"MaxItems must be an integer from 1 to 10000, got {raw!r}")
    most = int(raw)
    marker = request.query_params.get("Marker", "")
    start = 0
    if marker:
        try:
            after = base64.urlsafe_b64decode(marker.encode()).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidSpec(f"Marker {marker!r} is not one this API gave") from None
        start = next((i for i, item in enumerate(items) if key(item) >= after), len(items))
    chunk = list(items[start : start + most])
    rest = items[start + most : start + most + 1]
    next_marker = base64.urlsafe_b64encode(key(rest[0]).encode()).decode() if rest else ""
    return chunk, next_marker


def version_key(record: FunctionRecord) -> str:
    """Sorts $LATEST first, then versions by number (as Lambda lists them)."""
    number = int(record.version) if is_version(record.version) else 0
    return f"{record.name}\0{number:012d}"
