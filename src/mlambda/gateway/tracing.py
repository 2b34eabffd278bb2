"""A SERVER span per HTTP request when tracing is on, continuing the caller's trace
(``traceparent`` or ``X-Amzn-Trace-Id``), with the access check as its ``auth`` child; and the
trace context an invoke route hands the platform, on or off (the handler always gets one)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlambda.observe.tracing import REQUEST_SPAN, Tracing, child_of
from mlambda.runtime.trace_header import TraceContext, incoming

TRACE = "trace"  # scope["state"] keys: the request's span, the access check's (start, end)
AUTH_NS = "auth_ns"
_HEADERS = (b"traceparent", b"x-amzn-trace-id")


def trace_of(scope: Scope) -> TraceContext | None:
    """The context an invocation continues: the request's span (tracing on), else what the
    caller sent (tracing off: ids still reach the handler), else None (a new trace)."""
    state = scope.get("state")
    if state is not None and TRACE in state:
        return state[TRACE]
    return _sent(scope)


def _sent(scope: Scope) -> TraceContext | None:
    found = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in _HEADERS}
    return incoming(found) if found else None


class TracedRequests:
    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parent = _sent(scope)
        span = child_of(parent)
        state = scope.setdefault("state", {})
        state[TRACE] = span
        status = 500
        started = time.time_ns()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        current = REQUEST_SPAN.set(span)
        try:
            await self.app(scope, receive, sending)
        finally:
            REQUEST_SPAN.reset(current)
            self._emit(scope, span, parent, started, status)

    def _emit(
        self, scope: Scope, span: TraceContext, parent: TraceContext | None, started: int,
        status: int,
    ) -> None:  # fmt: skip
        method, path = scope["method"], scope["path"]
        attributes = {"http.request.method": method, "url.path": path,
                      "http.response.status_code": status}  # fmt: skip
        error = f"HTTP {status}" if status >= 500 else ""
        self.tracing.emit(f"{method} {path}", span, parent, started, time.time_ns(),
                          kind="server", attributes=attributes, error=error)  # fmt: skip
        checked = scope["state"].get(AUTH_NS)
        if checked is not None:
            self.tracing.emit("auth", child_of(span), span, *checked)
