"""An OTLP/HTTP trace receiver on 127.0.0.1 for tests: decodes what an exporter sends (the
protobuf ExportTraceServiceRequest) and keeps every span."""

from __future__ import annotations

import dataclasses
import gzip
import http.server
import threading
import time
from typing import Any


@dataclasses.dataclass
class Span:
    name: str
    trace: str
    id: str
    parent: str
    start: int
    end: int
    kind: int
    status: int  # 0 unset, 1 ok, 2 error
    attributes: dict[str, Any]
    service: str


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Collector:
    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as service

        spans = self.spans = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = service.ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    named = {a.key: _value(a.value) for a in resource.resource.attributes}
                    for scope in resource.scope_spans:
                        for s in scope.spans:
                            spans.append(Span(
                                s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(),
                                s.start_time_unix_nano, s.end_time_unix_nano, s.kind,
                                s.status.code, {a.key: _value(a.value) for a in s.attributes},
                                str(named.get("service.name", "")),
                            ))  # fmt: skip
                answer = service.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self) -> dict[str, str]:
        """What serve needs to export here, at once (the batch processor waits 50 ms)."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.url, "OTEL_BSP_SCHEDULE_DELAY": "50"}

    def trace(self, trace_id: str, wanted: set[str], timeout: float = 15) -> dict[str, Span]:
        """The trace's spans by name, once every name in ``wanted`` has arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = {s.name: s for s in self.spans if s.trace == trace_id}
            if wanted <= set(found):
                return found
            time.sleep(0.05)
        names = sorted(s.name for s in self.spans if s.trace == trace_id)
        raise AssertionError(f"trace {trace_id}: {sorted(wanted)} wanted, got {names}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
