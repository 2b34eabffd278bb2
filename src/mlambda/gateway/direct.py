"""The direct route: ``POST /v1/functions/{name}/invoke`` without a query string, the call
every client makes most, answered ahead of Starlette's middleware and route scan.

It goes through the same access control as every other route and answers exactly as the
routed ``invoke`` endpoint does (the test suite compares the two); only the per-request work
of Starlette's layers (two exception wrappers, the route scan, a Request object, query
parsing) is left out: about a third of the gateway's time per call (bench/gateway.py). Any
other form of the call (``?mode=async``, ``?qualifier=``, ``?proba=``) takes the routed way.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.types import Message, Receive, Scope, Send

from mlambda.errors import MlambdaError
from mlambda.gateway.auth import AccessControl
from mlambda.gateway.body import check_json, too_large
from mlambda.gateway.responses import error_response, invocation_response, unexpected_error
from mlambda.gateway.tracing import trace_of
from mlambda.registry.model import merge_qualifiers
from mlambda.security.permissions import function_ref

if TYPE_CHECKING:
    from mlambda.platform import Platform

PATH = re.compile(r"/v1/functions/([^/]+)/invoke")


def target(scope: Scope) -> str | None:
    """The function segment of a request the direct route answers; None for any other."""
    if scope["method"] != "POST" or scope.get("query_string") or scope.get("root_path"):
        return None
    match = PATH.fullmatch(scope["path"])
    return match.group(1) if match else None


class DirectInvoke:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.guarded = AccessControl(self._invoke, platform)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.guarded(scope, receive, send)

    async def _invoke(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            payload = await _body(scope, receive, self.platform.settings.max_payload_bytes)
            if payload is None:
                return  # the client went away before it sent the whole request
            check_json(payload)
            segment = target(scope)
            assert segment is not None  # Gateway sends only what target() accepts
            name, in_name = function_ref(segment)
            invocation = await self.platform.invoke(
                name,
                payload,
                params={},
                qualifier=merge_qualifiers(in_name, None),
                trace=trace_of(scope),
            )
            response = invocation_response(invocation)
        except MlambdaError as exc:
            response = error_response(exc)
        except Exception:
            # As the routed way: a 500 in the platform's error shape, the traceback to the log.
            await unexpected_error()(scope, receive, send)
            raise
        await response(scope, receive, send)


async def _body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body under ``limit`` (refused early on Content-Length), as read_body."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            declared = value.decode("latin-1")
            if declared.isdigit() and int(declared) > limit:
                raise too_large(f"Request payload size ({declared} bytes)", limit)
            break
    chunks = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large("Request payload", limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
