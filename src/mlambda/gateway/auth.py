"""API-key authentication as ASGI middleware: every route but the open ones needs the key."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from mlambda.errors import Unauthorized
from mlambda.gateway.responses import error_response

OPEN_PATHS = frozenset({"/healthz"})


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def is_authorized(header: str | None, key: str) -> bool:
    token = bearer_token(header)
    # compare_digest: the time taken does not reveal how much of the key matched.
    return token is not None and hmac.compare_digest(token.encode(), key.encode())


class KeyAuth:
    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        if is_authorized(header, self.key):
            await self.app(scope, receive, send)
            return
        message = (
            "Missing API key: send 'Authorization: Bearer <key>' "
            "(the key is in <data dir>/admin.key)"
            if header is None
            else "Invalid API key"
        )
        response = error_response(Unauthorized(message))
        response.headers["WWW-Authenticate"] = "Bearer"
        await response(scope, receive, send)
