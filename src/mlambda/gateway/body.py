"""Reading request bodies under a size limit, and the JSON check on invoke payloads."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from starlette.requests import Request

from mlambda.errors import InvalidRequest, PayloadTooLarge


def too_large(what: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{what} exceeds the limit of {limit} bytes")


async def read_body(request: Request, limit: int, what: str = "Request payload") -> bytes:
    """The whole body; refuses early on Content-Length and stops reading past ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(f"{what} size ({declared} bytes)", limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(what, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def check_json(payload: bytes) -> None:
    """Refuse a payload that is not JSON, before any instance sees (or starts for) it."""
    if not payload.strip():
        return
    try:
        msgspec.json.decode(payload)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Could not parse request body into json: {exc}") from None
    except RecursionError:
        raise InvalidRequest(
            "Could not parse request body into json: it is nested too deeply"
        ) from None


async def read_object(request: Request, limit: int) -> dict[str, Any]:
    """A body that must be a JSON object ({} when empty)."""
    raw = await read_body(request, limit)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise InvalidRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def state_and_limit(
    request: Request, states: tuple[str, ...], max_limit: int = 1000
) -> tuple[str | None, int]:
    """A listing's ``state`` filter (one of ``states``) and ``limit`` (1 to max_limit, default
    100), or a 400 naming the bad one."""
    state = request.query_params.get("state")
    if state is not None and state not in states:
        raise InvalidRequest(f"state must be one of {', '.join(states)}, got {state!r}")
    raw = request.query_params.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= max_limit:
        raise InvalidRequest(f"limit must be an integer from 1 to {max_limit}, got {raw!r}")
    return state, int(raw)
