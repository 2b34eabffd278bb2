"""Open Inference Protocol v2 (REST), as KServe, Triton and MLServer speak it, for model functions.

Includes the binary tensor data extension that ``tritonclient`` uses by default: a JSON header
of ``Inference-Header-Content-Length`` bytes followed by raw little-endian tensors, and the same
shape in the answer when an output asks for ``binary_data``. The gateway only routes: decoding
and checking tensors happens in the instance, which knows the model's signature.

A model is "ready" when it is deployed and can be started: a function scaled to zero answers
ready, and its first inference request starts an instance.
"""

from __future__ import annotations

import zlib

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlambda import __version__
from mlambda.errors import FunctionError, InvalidRequest, MlambdaError, PayloadTooLarge
from mlambda.gateway.body import read_body
from mlambda.gateway.responses import REQUEST_ID_HEADER
from mlambda.gateway.tracing import trace_of
from mlambda.platform import Platform
from mlambda.registry import FunctionRecord

HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ["binary_tensor_data"]


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def error(message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """The protocol's error body: {"error": message}."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _model(request: Request) -> FunctionRecord:
    """The model function a /v2/models/{name}[/versions/{version}] path names."""
    platform = _platform(request)
    record = platform.get(request.path_params["name"])
    if not record.spec.is_model:
        raise InvalidRequest(
            f"function {record.name!r} is a handler, not a model: the inference protocol serves "
            "model functions (function.model); invoke handlers at /v1/functions/{name}/invoke"
        )
    version = request.path_params.get("version")
    if version is not None and version != record.version:
        raise _UnknownVersion(record, version)
    return record


class _UnknownVersion(MlambdaError):
    status = 404
    error_type = "ResourceNotFoundException"

    def __init__(self, record: FunctionRecord, version: str) -> None:
        super().__init__(
            f"model {record.name!r} has no version {version!r}; its version is {record.version!r}"
        )


async def live(request: Request) -> Response:
    return JSONResponse({"live": True})


async def ready(request: Request) -> Response:
    return JSONResponse({"ready": _platform(request).started})


async def server_metadata(request: Request) -> Response:
    return JSONResponse({"name": "mlambda", "version": __version__, "extensions": EXTENSIONS})


async def model_ready(request: Request) -> Response:
    try:
        _model(request)
    except MlambdaError as exc:
        return error(exc.message, exc.status)
    return JSONResponse({"name": request.path_params["name"], "ready": True})


async def signature(platform: Platform, name: str) -> bytes:
    """A model function's signature (inference protocol metadata JSON). Asked of an instance
    once per version (starting one if none runs), then kept with the pool."""
    pool = await platform.router.pool_for(name)
    if pool.metadata is None:
        invocation = await pool.invoke(b"", kind="v2-metadata")
        if invocation.error is not None:
            raise invocation.error
        pool.metadata = invocation.body
    return pool.metadata


async def model_metadata(request: Request) -> Response:
    try:
        record = _model(request)
        body = await signature(_platform(request), record.name)
    except MlambdaError as exc:
        return _error_of(exc)
    return Response(body, media_type="application/json")


async def infer(request: Request) -> Response:
    platform = _platform(request)
    try:
        record = _model(request)
        limit = platform.settings.max_payload_bytes
        payload = decompress(
            await read_body(request, limit), request.headers.get("content-encoding", ""), limit
        )
        params = {}
        declared = request.headers.get(HEADER_LENGTH)
        if declared is not None:
            if not declared.isdigit() or int(declared) > len(payload):
                raise InvalidRequest(
                    f"{HEADER_LENGTH} must be a byte count within the body "
                    f"({len(payload)} bytes), got {declared!r}"
                )
            params["header_length"] = declared
        invocation = await platform.invoke(
            record.name, payload, kind="v2", params=params, trace=trace_of(request.scope)
        )
    except MlambdaError as exc:
        return _error_of(exc)
    if invocation.error is not None:
        return _error_of(invocation.error, invocation.request_id)
    headers = {REQUEST_ID_HEADER: invocation.request_id, **invocation.headers}
    media_type = "application/octet-stream" if HEADER_LENGTH in headers else "application/json"
    return Response(invocation.body, media_type=media_type, headers=headers)


def decompress(payload: bytes, encoding: str, limit: int) -> bytes:
    """A body sent with Content-Encoding gzip or deflate (tritonclient's
    request_compression_algorithm), inflated under the same size limit."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return payload
    if encoding not in ("gzip", "deflate"):
        raise InvalidRequest(f"Content-Encoding {encoding!r} is not supported (gzip, deflate)")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(payload, limit + 1)
    except zlib.error as exc:
        raise InvalidRequest(f"the body is not valid {encoding} data: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"Request payload exceeds the limit of {limit} bytes once inflated")
    return data


def _error_of(exc: MlambdaError, request_id: str | None = None) -> JSONResponse:
    headers = {REQUEST_ID_HEADER: request_id} if request_id else {}
    message = exc.message
    if isinstance(exc, FunctionError) and exc.status != 400:
        message = f"{exc.error_type}: {exc.message}"
    return error(message, exc.status, headers)


def routes() -> list[Route]:
    models = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    return [
        Route(f"{models}/infer", infer, methods=["POST"]),
        Route(f"{versioned}/infer", infer, methods=["POST"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route(models, model_metadata, methods=["GET"]),
        Route(versioned, model_metadata, methods=["GET"]),
        Route(f"{models}/ready", model_ready, methods=["GET"]),
        Route(f"{versioned}/ready", model_ready, methods=["GET"]),
    ]
