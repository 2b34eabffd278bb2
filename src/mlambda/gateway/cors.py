"""CORS for function URLs (pure): the headers of a preflight's answer and of a response."""

from __future__ import annotations

from collections.abc import Mapping

from mlambda.urlconfig import CorsSpec

Headers = list[tuple[str, str]]


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return (
        method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers
    )


def _origin(cors: CorsSpec, origin: str | None) -> str | None:
    """The Access-Control-Allow-Origin value for this origin, or None when it is not allowed."""
    if not origin:
        return None
    if "*" in cors.allow_origins:
        return "*"
    allowed = {o.lower().rstrip("/") for o in cors.allow_origins}
    return origin if origin.lower().rstrip("/") in allowed else None


def _common(cors: CorsSpec, allowed: str) -> Headers:
    headers = [("access-control-allow-origin", allowed)]
    if cors.allow_credentials:
        headers.append(("access-control-allow-credentials", "true"))
    if allowed != "*":
        headers.append(("vary", "Origin"))
    return headers


def preflight(cors: CorsSpec, headers: Mapping[str, str]) -> Headers:
    """The answer's headers; none (the browser then refuses) for an origin or method not
    allowed."""
    allowed = _origin(cors, headers.get("origin"))
    method = headers.get("access-control-request-method", "").upper()
    methods = {m.upper() for m in cors.allow_methods}
    if allowed is None or not ("*" in methods or method in methods):
        return []
    answer = _common(cors, allowed)
    answer.append(("access-control-allow-methods", ", ".join(cors.allow_methods)))
    asked = headers.get("access-control-request-headers", "")
    if "*" in cors.allow_headers:
        if asked:
            answer.append(("access-control-allow-headers", asked))
    elif cors.allow_headers:
        answer.append(("access-control-allow-headers", ", ".join(cors.allow_headers)))
    if cors.max_age:
        answer.append(("access-control-max-age", str(cors.max_age)))
    return answer


def response_headers(cors: CorsSpec, origin: str | None) -> Headers:
    """What a CORS-configured URL adds to the function's response (replacing its own)."""
    allowed = _origin(cors, origin)
    if allowed is None:
        return []
    headers = _common(cors, allowed)
    if cors.expose_headers:
        headers.append(("access-control-expose-headers", ", ".join(cors.expose_headers)))
    return headers
