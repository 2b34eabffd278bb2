"""The platform's queues (``mlambda://NAME``, events/queues.py): send, receive, delete, list."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import InvalidRequest
from mlambda.events.queues import PlatformQueues
from mlambda.gateway.body import read_body

DEFAULT_VISIBILITY_S = 30


def _queues(request: Request) -> PlatformQueues:
    return request.app.state.platform.queues


def _number(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name, str(default))
    if not raw.isdigit():
        raise InvalidRequest(f"{name} must be a whole number, got {raw!r}")
    return int(raw)


async def list_queues(request: Request) -> Response:
    """Queues with messages not yet deleted: how many, and the oldest's send time."""
    depths = await _queues(request).depths()
    return JSONResponse({"queues": [{"name": name, **depth} for name, depth in depths.items()]})


async def send(request: Request) -> Response:
    """Store a message (201 once stored); its body is kept as it was sent."""
    limit = request.app.state.platform.settings.max_async_payload_bytes
    body = await read_body(request, limit, "Message")
    message_id = await _queues(request).send(request.path_params["name"], body)
    return JSONResponse({"messageId": message_id}, status_code=201)


async def receive(request: Request) -> Response:
    """Up to ``max_messages`` messages, each hidden for ``visibility_timeout_s``."""
    most = _number(request, "max_messages", 1)
    visibility = _number(request, "visibility_timeout_s", DEFAULT_VISIBILITY_S)
    messages = await _queues(request).receive(request.path_params["name"], most, visibility)
    return JSONResponse({"messages": [message.to_dict() for message in messages]})


async def delete(request: Request) -> Response:
    await _queues(request).delete(request.path_params["name"], request.path_params["receipt"])
    return Response(status_code=204)
