"""API-key authentication as ASGI middleware: every route but the open ones needs the key."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlambda.errors import PayloadTooLarge, Unauthorized
from mlambda.gateway import sigv4
from mlambda.gateway.responses import error_response

# Signed requests are buffered to verify them; bundles are deployed with the Bearer key.
SIGNED_BODY_LIMIT = 8 * 1024 * 1024

OPEN_PATHS = frozenset({"/healthz", "/v2/health/live", "/v2/health/ready"})


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
        if header is not None and header.startswith(sigv4.ALGORITHM):
            await self._signed(scope, receive, send)
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

    async def _signed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An AWS SigV4-signed request (boto3, the AWS CLI): the body is part of what is
        signed, so it is read here (bounded like any body) and handed on unchanged."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > SIGNED_BODY_LIMIT:
                await error_response(PayloadTooLarge("Request too large to verify"))(
                    scope, receive, send
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            sigv4.verify(
                secret=self.key,
                method=scope["method"],
                raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
            )
        except sigv4.SignatureError as exc:
            await error_response(Unauthorized(f"Invalid AWS signature: {exc}"))(
                scope, receive, send
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
