"""Trace context in the two forms a call may carry it (pure, standard library only): W3C's
``traceparent`` and AWS X-Ray's ``X-Amzn-Trace-Id`` (what Lambda puts in ``_X_AMZN_TRACE_ID``).

An X-Ray root ``1-5759e988-bd862e3fe1be46a994272793`` is the W3C trace id
``5759e988bd862e3fe1be46a994272793``: its first 8 hex digits are the epoch second it began, so
the ids the platform makes keep that form and X-Ray tools accept them.

    context = incoming({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    xray_header(context)
    # 'Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=b7ad6b7169203331;Sampled=1'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ROOT = re.compile(r"1-([0-9a-f]{8})-([0-9a-f]{24})")
_SPAN = re.compile(r"[0-9a-f]{16}")
ZERO_TRACE, ZERO_SPAN = "0" * 32, "0" * 16


@dataclasses.dataclass(frozen=True)
class TraceContext:
    trace_id: str  # 32 lower-case hex digits
    span_id: str  # 16 hex digits: the caller's span ("" when an X-Ray header names no parent)
    sampled: bool = True


def parse_traceparent(value: str) -> TraceContext | None:
    """A W3C ``traceparent``; None when it is malformed (a new trace starts, as the spec says)."""
    match = _TRACEPARENT.fullmatch(value.strip().lower())
    if match is None or match[1] == "ff" or match[2] == ZERO_TRACE or match[3] == ZERO_SPAN:
        return None
    if match[1] == "00" and len(value.strip()) != 55:
        return None
    return TraceContext(match[2], match[3], bool(int(match[4], 16) & 1))


def parse_xray(value: str) -> TraceContext | None:
    """An ``X-Amzn-Trace-Id``: ``Root=1-...;Parent=...;Sampled=0|1`` in any order (Self= and
    other keys ignored); None without a valid Root."""
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, _, field = part.strip().partition("=")
        fields.setdefault(key.strip().lower(), field.strip().lower())
    root = _ROOT.fullmatch(fields.get("root", ""))
    if root is None or root[1] + root[2] == ZERO_TRACE:
        return None
    parent = fields.get("parent", "")
    if not _SPAN.fullmatch(parent) or parent == ZERO_SPAN:
        parent = ""
    return TraceContext(root[1] + root[2], parent, fields.get("sampled", "1") != "0")


def incoming(headers: Mapping[str, str]) -> TraceContext | None:
    """The context a request carries (lower-case header names): ``traceparent`` first, then
    ``x-amzn-trace-id``."""
    value = headers.get("traceparent")
    found = parse_traceparent(value) if value else None
    if found is None and headers.get("x-amzn-trace-id"):
        found = parse_xray(headers["x-amzn-trace-id"])
    return found


def traceparent(context: TraceContext) -> str:
    span = context.span_id or ZERO_SPAN
    return f"00-{context.trace_id}-{span}-{'01' if context.sampled else '00'}"


def xray_header(context: TraceContext) -> str:
    root = f"1-{context.trace_id[:8]}-{context.trace_id[8:]}"
    parent = f";Parent={context.span_id}" if context.span_id else ""
    return f"Root={root}{parent};Sampled={1 if context.sampled else 0}"


def new_trace_id(now: float, entropy: bytes) -> str:
    """A trace id that is also a valid X-Ray root: the epoch second, then 12 random bytes."""
    return f"{int(now) & 0xFFFFFFFF:08x}{entropy[:12].hex()}"
