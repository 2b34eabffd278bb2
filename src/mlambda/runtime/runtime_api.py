"""The Lambda Runtime API, served inside one instance to its own bootstrap on 127.0.0.1.

A provided runtime's bootstrap (runtime/provided.py starts it) asks for work and answers it
over HTTP, as it does on Lambda (version 2018-06-01)::

    GET  /2018-06-01/runtime/invocation/next           200: the event, Lambda-Runtime-* headers
    POST /2018-06-01/runtime/invocation/{id}/response  202: the result
    POST /2018-06-01/runtime/invocation/{id}/error     202: a function error, in Lambda's shape
    POST /2018-06-01/runtime/init/error                202: init failed (then it should exit)

Refusals are JSON ``{"errorMessage", "errorType"}`` with the statuses Lambda's own API uses:
400 InvalidRequestID (not the invocation in progress, or answered already), 403
InvalidStateTransition (an init error once init is over, a second /next before an answer),
404 for a path it does not serve, 413 RequestEntityTooLarge (a result over the limit; the call
then fails with Function.ResponseSizeTooLarge).

One call at a time: ``offer`` hands the next invocation to the pending /next; what the bootstrap
says arrives, in order, on ``events``. Only this instance's loopback reaches the server (and, in
a network namespace of its own, nothing else on the machine), so it asks for no key.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import queue
import re
import threading
import time
from typing import Any

from mlambda.runtime import protocol
from mlambda.runtime.handler import ResponseTooLarge, invocation_error

PREFIX = "/2018-06-01/runtime"
_INVOCATION = re.compile(rf"{PREFIX}/invocation/([^/]+)/(response|error)")
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
# An error body is a message and a stack trace: bounded well below a result's limit.
MAX_ERROR_BYTES = 1024 * 1024


def route(method: str, path: str) -> tuple[str, str]:
    """(what the request asks, its request id): ("next" | "response" | "error" | "init_error"
    | "", ""); "" for a path or method the Runtime API does not have."""
    path = path.split("?", 1)[0]
    if method == "GET" and path == f"{PREFIX}/invocation/next":
        return "next", ""
    if method != "POST":
        return "", ""
    if path == f"{PREFIX}/init/error":
        return "init_error", ""
    match = _INVOCATION.fullmatch(path)
    if match is None:
        return "", ""
    return match.group(2), match.group(1)


def trace_id(now: float, entropy: bytes) -> str:
    """An X-Ray trace header as Lambda passes one to every invocation (12 + 8 random bytes)."""
    return f"Root=1-{int(now):08x}-{entropy[:12].hex()};Parent={entropy[12:20].hex()};Sampled=0"


def invocation_headers(request: protocol.Invoke, arn: str, trace: str) -> dict[str, str]:
    """The Lambda-Runtime-* headers of ``request``'s answer to /next."""
    headers = {
        "Content-Type": "application/json",
        "Lambda-Runtime-Aws-Request-Id": request.request_id,
        "Lambda-Runtime-Deadline-Ms": str(request.deadline_ms),
        "Lambda-Runtime-Invoked-Function-Arn": arn,
        "Lambda-Runtime-Trace-Id": trace,
    }
    if request.client_context:
        headers["Lambda-Runtime-Client-Context"] = request.client_context
    return headers


def error_payload(body: bytes, error_type: str, default_type: str) -> dict[str, Any]:
    """Lambda's error shape from what a bootstrap posted: its JSON object (errorMessage,
    errorType, stackTrace...), the error-type header where the body names none."""
    try:
        posted = json.loads(body) if body.strip() else {}
    except ValueError:
        posted = {"errorMessage": body.decode("utf-8", errors="replace")}
    if not isinstance(posted, dict):
        posted = {"errorMessage": json.dumps(posted)}
    payload = dict(posted)
    payload["errorType"] = str(posted.get("errorType") or error_type or default_type)
    payload["errorMessage"] = str(posted.get("errorMessage", ""))
    return payload


def refusal(status: int, error_type: str, message: str) -> tuple[int, dict[str, str]]:
    return status, {"errorMessage": message, "errorType": error_type}


ACCEPTED: tuple[int, dict[str, str]] = (202, {"status": "OK"})


@dataclasses.dataclass(frozen=True)
class Event:
    """What the bootstrap said: "ready" (its first /next), "init_error", "response", "error"."""

    kind: str
    request_id: str = ""
    body: bytes = b""
    error: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Invocation:
    request_id: str
    payload: bytes
    headers: dict[str, str]


class RuntimeApi:
    """The Runtime API's state for one instance, and its HTTP server on an ephemeral port."""

    def __init__(self, max_response_bytes: int) -> None:
        self.max_response_bytes = max_response_bytes
        self.events: queue.Queue[Event] = queue.Queue()
        self._lock = threading.Condition()
        self._offered: Invocation | None = None
        self._current = ""  # the invocation the bootstrap holds and has not answered
        self._ready = False
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True

    @property
    def address(self) -> str:
        """``AWS_LAMBDA_RUNTIME_API``: host:port, no scheme."""
        port = self._server.server_address[1]
        return f"127.0.0.1:{port}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="runtime-api", daemon=True).start()

    def offer(self, request: protocol.Invoke, arn: str) -> None:
        trace = request.trace or trace_id(time.time(), os.urandom(20))
        invocation = Invocation(
            request.request_id, request.payload, invocation_headers(request, arn, trace)
        )
        with self._lock:
            self._offered = invocation
            self._lock.notify_all()

    # -- called by the server's threads, one per connection ------------------------------

    def next_invocation(self) -> Invocation | tuple[int, dict[str, str]]:
        with self._lock:
            if self._current:
                return refusal(
                    403,
                    "InvalidStateTransition",
                    f"Invocation {self._current} has no response yet: post its response or "
                    "error before asking for the next one",
                )
            if not self._ready:
                self._ready = True
                self.events.put(Event("ready"))
            while self._offered is None:
                self._lock.wait()
            invocation, self._offered = self._offered, None
            self._current = invocation.request_id
            return invocation

    def init_error(self, body: bytes, error_type: str) -> tuple[int, dict[str, str]]:
        with self._lock:
            if self._ready:
                return refusal(
                    403, "InvalidStateTransition", "Init is over: /init/error comes before /next"
                )
            self.events.put(Event("init_error", error=error_payload(body, error_type, "")))
        return ACCEPTED

    def answer(
        self, kind: str, request_id: str, body: bytes | None, error_type: str, size: int = 0
    ) -> tuple[int, dict[str, str]]:
        """The bootstrap's answer to the invocation it holds; ``body`` None: it was ``size``
        bytes, over the limit, and was not read."""
        with self._lock:
            if not request_id or request_id != self._current:
                return refusal(400, "InvalidRequestID", "Invalid request ID")
            self._current = ""
            if body is None:
                # The call fails as on Lambda (a too large error body fails it as well).
                exceeded = ResponseTooLarge(size, self.limit(kind))
                self.events.put(Event("error", request_id, error=invocation_error(exceeded, "")))
                return too_large(self.limit(kind))
            if kind == "response":
                self.events.put(Event("response", request_id, body=body))
            else:
                error = error_payload(body, error_type, "Unhandled")
                self.events.put(Event("error", request_id, error=error))
        return ACCEPTED

    def limit(self, kind: str) -> int:
        """The most bytes a body of this kind may hold."""
        return self.max_response_bytes if kind == "response" else MAX_ERROR_BYTES

    def close(self) -> None:
        self._server.server_close()


def too_large(limit: int) -> tuple[int, dict[str, str]]:
    return refusal(
        413, "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({limit} bytes)."
    )


def _handler_for(api: RuntimeApi) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(_RuntimeApiHandler):
        runtime_api = api

    return Handler


class _RuntimeApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a runtime client holds one connection
    # Headers and body go out as two writes: with Nagle's algorithm the body would wait for
    # the client's delayed ACK (40 ms on Linux) on every call.
    disable_nagle_algorithm = True
    runtime_api: RuntimeApi

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        kind, request_id = route(self.command, self.path)
        api = self.runtime_api
        if not kind:
            self._reply_json(*refusal(404, "NotFound", f"No such path: {self.command} {self.path}"))
            return
        if kind == "next":
            self._send_invocation(api.next_invocation())
            return
        limit = api.limit(kind)
        body = self._read_body(limit)
        error_type = self.headers.get(ERROR_TYPE_HEADER, "")
        if kind == "init_error":
            outcome = too_large(limit) if body is None else api.init_error(body, error_type)
            self._reply_json(*outcome)
            return
        size = int(self.headers.get("Content-Length") or limit + 1)
        self._reply_json(*api.answer(kind, request_id, body, error_type, size))

    def _read_body(self, limit: int) -> bytes | None:
        """The request's body, or None when it is over ``limit``. An oversized body is still
        read to its end (and dropped): a client that is not read from sees a broken pipe, not
        the 413, and the bootstrap sending it is the only one to wait."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length = int(self.headers.get("Content-Length") or 0)
        if length <= limit:
            return self.rfile.read(length)
        while length > 0:
            dropped = self.rfile.read(min(length, 1 << 16))
            if not dropped:
                break  # the client went away
            length -= len(dropped)
        return None

    def _read_chunked(self, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            length = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if length == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks) if size <= limit else None
            size += length
            chunk = self.rfile.read(length)
            if size <= limit:
                chunks.append(chunk)
            self.rfile.readline()

    def _send_invocation(self, outcome: Invocation | tuple[int, dict[str, str]]) -> None:
        if not isinstance(outcome, Invocation):
            self._reply_json(*outcome)
            return
        self.send_response(200)
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(outcome.payload)))
        self.end_headers()
        self.wfile.write(outcome.payload)

    def _reply_json(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the function's log holds what the bootstrap writes, not our access lines
