"""Function URLs: HTTP request -> API Gateway HTTP API (payload 2.0) event, and back (pure)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    function_name: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The event Lambda hands a function behind a function URL or an HTTP API."""
    now = time.time() if now is None else now
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": function_name,
            "domainName": merged.get("host", "localhost"),
            "domainPrefix": function_name,
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        event["queryStringParameters"] = _query_parameters(raw_query)
    if body:
        event["body"], event["isBase64Encoded"] = _encode_body(body, merged.get("content-type", ""))
    return event


def _query_parameters(raw_query: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    params: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


def _encode_body(body: bytes, content_type: str) -> tuple[str, bool]:
    if content_type.lower().startswith(TEXT_TYPES) or not content_type:
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


class HttpResult:
    """What the handler's return value means as an HTTP response."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def parse_result(raw: bytes) -> HttpResult:
    """``{"statusCode", "headers", "body", "isBase64Encoded", "cookies"}`` -> response; any
    other return value is a 200 JSON body, as Lambda does for function URLs."""
    result = json.loads(raw)
    if not isinstance(result, dict) or "statusCode" not in result:
        return HttpResult(200, [("content-type", "application/json")], raw)
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(str(key), str(v)) for v in values]
    headers += [("set-cookie", str(c)) for c in result.get("cookies") or []]
    body = result.get("body")
    if body is None:
        data = b""
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(str(body))
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps(body).encode()
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("content-type", "application/json"))
    return HttpResult(int(result["statusCode"]), headers, data)
