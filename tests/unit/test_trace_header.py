"""Trace context read from and written to W3C traceparent and X-Amzn-Trace-Id (tables)."""

from __future__ import annotations

import pytest

from mlambda.runtime.trace_header import (
    TraceContext,
    incoming,
    new_trace_id,
    parse_traceparent,
    parse_xray,
    traceparent,
    xray_header,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"00-{TRACE}-{SPAN}-01", TraceContext(TRACE, SPAN, True)),
        (f"00-{TRACE}-{SPAN}-00", TraceContext(TRACE, SPAN, False)),
        (f"00-{TRACE.upper()}-{SPAN}-01", TraceContext(TRACE, SPAN, True)),
        (f"01-{TRACE}-{SPAN}-01-future", None),  # a later version may add fields, but not so
        (f"00-{TRACE}-{SPAN}-01-extra", None),  # version 00 has exactly four fields
        (f"ff-{TRACE}-{SPAN}-01", None),  # version ff is invalid
        (f"00-{'0' * 32}-{SPAN}-01", None),  # all-zero ids are invalid
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE[:-1]}-{SPAN}-01", None),
        ("garbage", None),
        ("", None),
    ],
)
def test_traceparent_is_read_as_the_w3c_spec_says(value, expected):
    assert parse_traceparent(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={SPAN};Sampled=1", TraceContext(TRACE, SPAN)),
        (
            f"Parent={SPAN};Root=1-{TRACE[:8]}-{TRACE[8:]};Sampled=0",
            TraceContext(TRACE, SPAN, False),
        ),
        (f"Root=1-{TRACE[:8]}-{TRACE[8:]}", TraceContext(TRACE, "", True)),  # no parent: a root
        (f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent=xyz;Sampled=1", TraceContext(TRACE, "", True)),
        (f"Self=1-abc;Root=1-{TRACE[:8]}-{TRACE[8:]};Lineage=a:1", TraceContext(TRACE, "", True)),
        (f"Root=2-{TRACE[:8]}-{TRACE[8:]}", None),
        ("Root=1-00000000-000000000000000000000000", None),
        ("Parent=b7ad6b7169203331", None),
        ("", None),
    ],
)
def test_an_xray_header_is_read_in_any_order_with_what_it_names(value, expected):
    assert parse_xray(value) == expected


def test_both_forms_are_written_back_and_read_again():
    context = TraceContext(TRACE, SPAN, True)
    assert traceparent(context) == f"00-{TRACE}-{SPAN}-01"
    root = "Root=1-0af76519-16cd43dd8448eb211c80319c"
    assert xray_header(context) == f"{root};Parent={SPAN};Sampled=1"
    assert parse_xray(xray_header(context)) == context
    assert parse_traceparent(traceparent(context)) == context
    assert xray_header(TraceContext(TRACE, "", False)).endswith("19c;Sampled=0")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"traceparent": f"00-{TRACE}-{SPAN}-01"}, TraceContext(TRACE, SPAN)),
        (
            {
                "traceparent": "bad",
                "x-amzn-trace-id": f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={SPAN}",
            },
            TraceContext(TRACE, SPAN),
        ),
        (
            {
                "traceparent": f"00-{TRACE}-{SPAN}-01",
                "x-amzn-trace-id": "Root=1-11111111-111111111111111111111111",
            },
            TraceContext(TRACE, SPAN),
        ),
        ({}, None),
    ],
)
def test_traceparent_wins_over_the_xray_header(headers, expected):
    assert incoming(headers) == expected


def test_a_new_trace_id_begins_with_the_epoch_second_as_xray_wants():
    made = new_trace_id(1_796_000_000.5, bytes(range(12)))
    assert made == f"{1_796_000_000:08x}000102030405060708090a0b"
    assert parse_xray(xray_header(TraceContext(made, SPAN))) == TraceContext(made, SPAN)
