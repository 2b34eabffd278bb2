"""Access control as ASGI middleware, in this order for every route but the open ones:

1. an address with too many failed authentications is refused (429) before anything is checked;
2. authentication: ``Authorization: Bearer <key>`` (the admin key or ``mlk_<id>_<secret>``) or
   an AWS SigV4 signature (boto3, the AWS CLI); a failure is recorded, answered after a growing
   delay, and audited;
3. authorization: the key's scopes must cover what the route needs (``permissions``), else 403;
4. the key's own rate limit (429 with Retry-After);
5. the route runs; a control-plane call is audited with its outcome.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlambda.errors import Forbidden, MlambdaError, PayloadTooLarge, Throttled, Unauthorized
from mlambda.gateway import sigv4
from mlambda.gateway.cors import is_preflight
from mlambda.gateway.responses import error_response, retry_headers
from mlambda.gateway.tracing import AUTH_NS, TRACE
from mlambda.security import keys
from mlambda.security.keys import Need, Principal
from mlambda.security.permissions import Rule, function_ref, need_of, rule_for
from mlambda.security.ratelimit import REFUSE_AFTER, failure_policy

if TYPE_CHECKING:
    from mlambda.platform import Platform

# Signed requests are buffered to verify them; bundles are deployed with the Bearer key.
SIGNED_BODY_LIMIT = 8 * 1024 * 1024
# The date-versioned paths of the Lambda API: refusals there are in the shape AWS clients parse.
LAMBDA_PATH = re.compile(r"/20\d\d-\d\d-\d\d/")
NAMED = "function named in the body"


async def key_principal(platform: Platform, token: str) -> Principal:
    """Who an API key (``MLK...``) or the admin key is; Unauthorized when it is neither."""
    parsed = keys.parse_token(token)
    if parsed is not None:
        return await asyncio.to_thread(platform.keys.authenticate, *parsed)
    # compare_digest: the time taken does not reveal how much of the key matched.
    if platform.api_key is not None and hmac.compare_digest(
        token.encode(), platform.api_key.encode()
    ):
        return keys.ADMIN
    raise Unauthorized("Invalid API key")


async def refused(platform: Platform, exc: MlambdaError, path: str, source: str) -> None:
    """A failed authentication: counted per address, audited, answered after a delay that
    grows with the failures (guessing keys gets slower, then refused)."""
    count = platform.auth_failures.record(source)
    delay, _ = failure_policy(count)
    detail = {"reason": exc.message[:200], "failures": count}
    await asyncio.to_thread(
        platform.audit.record,
        "auth.refused",
        target=path[:200],
        outcome="denied",
        source=source,
        detail=detail,
    )
    if delay:
        await asyncio.sleep(delay)


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class AccessControl:
    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule, function = rule_for(scope["method"], scope["path"])
        if rule.action == "open" or (rule.path.startswith("/fn/") and self._open_url(scope)):
            await self.app(scope, receive, send)
            return
        source = scope["client"][0] if scope.get("client") else ""
        checking = time.time_ns()
        # The Lambda API and the SQS protocol (POST /) answer refusals as AWS does.
        lambda_api = LAMBDA_PATH.match(scope["path"]) is not None or scope["path"] == "/"
        failures = self.platform.auth_failures
        if failures.count(source) >= REFUSE_AFTER:
            refusal = Throttled(
                "Too many failed authentications from this address; retry later",
                retry_after=failures.retry_after(source),
            )
            await _respond(refusal, lambda_api, scope, receive, send)
            return
        try:
            principal, receive = await self._authenticate(scope, receive)
        except PayloadTooLarge as exc:
            await _respond(exc, lambda_api, scope, receive, send)
            return
        except Unauthorized as exc:
            await self._refused(exc, scope, source)
            await _respond(exc, lambda_api, scope, receive, send)
            return
        need = need_of(rule, function)
        if not principal.allows(need):
            denied = Forbidden(_denial(principal, need))
            await self._audit("auth.forbidden", principal, source, function, "denied", scope)
            await _respond(denied, lambda_api, scope, receive, send)
            return
        if principal.rate is not None:
            wait = await self.platform.limiter.allow(f"key:{principal.key_id}", principal.rate)
            if wait > 0:
                limited = Throttled(
                    f"Rate exceeded for API key {principal.key_id} "
                    f"({principal.rate.per_second:g} requests/s, burst {principal.rate.burst:g})",
                    retry_after=wait,
                )
                await _respond(limited, lambda_api, scope, receive, send)
                return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        if TRACE in state:
            state[AUTH_NS] = (checking, time.time_ns())
        if rule.audit:
            await self._audited(rule, principal, source, function, scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _open_url(self, scope: Scope) -> bool:
        """A public function URL (auth_type NONE), or a CORS preflight to one with CORS set: a
        browser sends a preflight with no key. The route answers it without the function.
        /fn/NAME:ALIAS/... is the alias's URL, with the settings of the version it names."""
        name, qualifier = function_ref(scope["path"].split("/")[2])
        url = self.platform.url_config(name, qualifier)
        if url is None:
            return False
        if url.public:
            return True
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        return url.cors is not None and is_preflight(scope["method"], headers)

    async def _authenticate(self, scope: Scope, receive: Receive) -> tuple[Principal, Receive]:
        platform = self.platform
        if platform.api_key is None:
            return keys.ANONYMOUS_ADMIN, receive
        header = _header(scope, b"authorization")
        if header is not None and header.startswith(sigv4.ALGORITHM):
            return await self._signed(scope, receive, header)
        query = scope.get("query_string", b"").decode("latin-1")
        if header is None and sigv4.is_presigned(query):
            return await self._presigned(scope, receive, query)
        token = bearer_token(header)
        if token is None:
            raise Unauthorized(
                "Missing API key: send 'Authorization: Bearer <key>' "
                "(the admin key is in <data dir>/admin.key)"
            )
        return await key_principal(platform, token), receive

    async def _signed(
        self, scope: Scope, receive: Receive, header: str
    ) -> tuple[Principal, Receive]:
        """An AWS SigV4-signed request: the body is part of what is signed, so it is read here
        (bounded like any body) and handed on unchanged."""
        body = await _read_body(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            key_id = sigv4.access_key_id(headers)
        except sigv4.SignatureError as exc:
            raise Unauthorized(f"Invalid AWS signature: {exc}", error_type=_SIGNATURE) from None
        secret, principal = await self._signing_key(key_id)
        try:
            sigv4.verify(
                secret=secret,
                method=scope["method"],
                raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
            )
        except sigv4.SignatureError as exc:
            raise Unauthorized(
                f"The request signature we calculated does not match the signature you "
                f"provided: {exc}",
                error_type=_SIGNATURE,
            ) from None
        return principal, _replay(body, receive)

    async def _presigned(
        self, scope: Scope, receive: Receive, query: str
    ) -> tuple[Principal, Receive]:
        """A presigned URL: the signature is in the query and covers no body."""
        body = await _read_body(receive)
        if body:
            raise Unauthorized(
                "A presigned URL signs no body: sign a request that has one in its headers",
                error_type=_SIGNATURE,
            )
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        secret, principal = await self._signing_key(sigv4.presigned_key_id(query))
        try:
            sigv4.verify_presigned(
                secret=secret,
                method=scope["method"],
                raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
                query=query,
                headers=headers,
            )
        except sigv4.SignatureError as exc:
            raise Unauthorized(
                f"The request signature we calculated does not match the signature you "
                f"provided: {exc}",
                error_type=_SIGNATURE,
            ) from None
        return principal, _replay(body, receive)

    async def _signing_key(self, key_id: str) -> tuple[str, Principal]:
        if key_id.startswith(keys.ID_PREFIX) and len(key_id) == keys.ID_LENGTH:
            try:
                return await asyncio.to_thread(self.platform.keys.signing_secret, key_id)
            except Unauthorized as exc:
                raise Unauthorized(exc.message, error_type=_UNRECOGNIZED) from None
        # Any other access key id signs with the admin key (as before scoped keys existed).
        assert self.platform.api_key is not None
        return self.platform.api_key, keys.ADMIN

    async def _refused(self, exc: MlambdaError, scope: Scope, source: str) -> None:
        await refused(self.platform, exc, scope["path"], source)

    async def _audit(
        self,
        action: str,
        principal: Principal,
        source: str,
        target: str,
        outcome: str,
        scope: Scope,
        status: int | None = None,
    ) -> None:
        detail: dict[str, object] = {"method": scope["method"], "path": scope["path"][:200]}
        if status is not None:
            detail["status"] = status
        await asyncio.to_thread(
            self.platform.audit.record,
            action,
            target=target,
            outcome=outcome,
            key_id=principal.key_id,
            source=source,
            detail=detail,
        )

    async def _audited(
        self,
        rule: Rule,
        principal: Principal,
        source: str,
        function: str,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Run a control-plane call and record it with the status it was answered with,
        before the answer is complete: whoever got the answer finds the entry."""
        status, recorded = 500, False

        async def record() -> None:
            nonlocal recorded
            recorded = True
            # A route that reads its function from the body names it (require, below).
            target = function or scope["state"].get(NAMED) or _target(scope)
            outcome = "ok" if status < 400 else "failed"
            await self._audit(rule.audit, principal, source, target, outcome, scope, status)

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                await record()
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if not recorded:
                await record()


_SIGNATURE = "InvalidSignatureException"
_UNRECOGNIZED = "UnrecognizedClientException"


def require(request: Request, need: Need) -> None:
    """For a route that learns its function from the body: the caller's key must cover it."""
    state = request.scope.setdefault("state", {})
    state[NAMED] = need.function
    principal: Principal | None = state.get("principal")
    if principal is not None and not principal.allows(need):
        raise Forbidden(_denial(principal, need))


def _denial(principal: Principal, need: Need) -> str:
    what = f"{need.action} {need.function!r}" if need.function else need.action
    wanted = f"{need.action}:{need.function}" if need.function else need.action
    if need.function == keys.IN_BODY:
        what, wanted = f"{need.action} any function", f"{need.action}[:PATTERN]"
    scopes = ", ".join(str(s) for s in principal.scopes)
    return f"API key {principal.key_id} ({scopes}) may not {what}: that needs scope {wanted}"


def _target(scope: Scope) -> str:
    """The key id of /v1/keys/{key}, or nothing: what a call without a function acts on."""
    parts = scope["path"].rstrip("/").split("/")
    return parts[3] if len(parts) > 3 and parts[2] == "keys" else ""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > SIGNED_BODY_LIMIT:
            raise PayloadTooLarge(f"Request too large to verify (over {SIGNED_BODY_LIMIT} bytes)")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _respond(
    exc: MlambdaError, lambda_api: bool, scope: Scope, receive: Receive, send: Send
) -> None:
    response: Response
    if lambda_api:
        from mlambda.gateway.lambda_api.common import aws_error

        response = aws_error(exc)
    else:
        response = error_response(exc)
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
    response.headers.update(retry_headers(exc))
    await response(scope, receive, send)
