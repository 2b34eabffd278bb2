"""Routes for the admin scope: API keys, the audit log, master key rotation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import InvalidRequest
from mlambda.gateway.body import read_body
from mlambda.platform import Platform
from mlambda.security.ratelimit import Rate

# A key request is a few scopes and numbers.
MAX_KEY_REQUEST_BYTES = 16 * 1024
MAX_AUDIT_PAGE = 1000


class KeyRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    scopes: list[str]
    expires_s: float | None = None
    rate_limit: float | None = None
    burst: float | None = None


def _platform(request: Request) -> Platform:
    return request.app.state.platform


async def list_keys(request: Request) -> Response:
    platform, now = _platform(request), time.time()
    listed = await asyncio.to_thread(platform.keys.list)
    return JSONResponse({"keys": [key.to_dict(now) for key in listed]})


async def create_key(request: Request) -> Response:
    platform = _platform(request)
    body = await read_body(request, MAX_KEY_REQUEST_BYTES, "Key request")
    try:
        wanted = msgspec.json.decode(body, type=KeyRequest)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"key request: {exc}") from None
    rate = _rate(wanted)
    key, token = await asyncio.to_thread(
        platform.keys.create, wanted.name, wanted.scopes, expires_in_s=wanted.expires_s, rate=rate
    )
    reply = {**key.to_dict(time.time()), "token": token, "secretAccessKey": token.split("_", 2)[2]}
    return JSONResponse(reply, status_code=201)


def _rate(wanted: KeyRequest) -> Rate | None:
    if wanted.rate_limit is None:
        if wanted.burst is not None:
            raise InvalidRequest("burst needs rate_limit (requests per second)")
        return None
    try:
        return Rate(wanted.rate_limit, wanted.burst or max(1.0, wanted.rate_limit))
    except ValueError as exc:
        raise InvalidRequest(f"rate_limit/burst: {exc}") from None


async def revoke_key(request: Request) -> Response:
    platform = _platform(request)
    key = await asyncio.to_thread(platform.keys.revoke, request.path_params["key"])
    return JSONResponse(key.to_dict(time.time()))


async def audit_log(request: Request) -> Response:
    """Entries oldest first; ?since=EPOCH, ?action=, ?after=SEQ, ?limit=N; ?verify=1 checks
    the whole chain instead."""
    platform = _platform(request)
    query = request.query_params
    if query.get("verify") in ("1", "true", "yes"):
        checked = await asyncio.to_thread(platform.audit.verify)
        return JSONResponse(
            {
                "ok": checked.ok,
                "checked": checked.checked,
                "firstBad": checked.first_bad,
                "reason": checked.reason,
            }
        )
    options: dict[str, Any] = {
        "since": _number(query.get("since"), "since", float),
        "after_seq": _number(query.get("after"), "after", int) or 0,
        "limit": min(_number(query.get("limit"), "limit", int) or MAX_AUDIT_PAGE, MAX_AUDIT_PAGE),
        "action": query.get("action") or None,
    }
    entries = await asyncio.to_thread(lambda: platform.audit.entries(**options))
    return JSONResponse({"entries": [entry.to_dict() for entry in entries]})


def _number(raw: str | None, name: str, kind: type[float] | type[int]) -> Any:
    if raw is None:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise InvalidRequest(f"query parameter {name!r} must be a number, got {raw!r}") from None
    if value < 0:
        raise InvalidRequest(f"query parameter {name!r} must not be negative, got {raw!r}")
    return value


async def rotate_master_key(request: Request) -> Response:
    """Re-wrap every data key (artifacts, secrets, key secrets) under a new master key; the
    platform keeps serving meanwhile."""
    summary = await _platform(request).rotate_master_key()
    return JSONResponse(summary)
