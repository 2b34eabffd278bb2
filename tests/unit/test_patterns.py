"""EventBridge event patterns: each operator, EventBridge's array and missing-field rules, $or,
and the patterns refused with where and why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlambda.errors import InvalidSpec
from mlambda.events.patterns import check_pattern, matches

ORDER = {
    "source": "shop.orders",
    "detail-type": "OrderPlaced",
    "detail": {"amount": 1500, "currency": "EUR", "items": [{"sku": "A1", "qty": 2}]},
}
ISSUE = {"source": ["shop.orders"], "detail": {"amount": [{"numeric": [">", 1000]}]}}


def event(**detail: Any) -> dict[str, Any]:
    return {"source": "test", "detail": detail}


def on(field: str, *matchers: Any) -> dict[str, Any]:
    """A pattern on one detail field."""
    return {"detail": {field: list(matchers)}}


CASES = [
    # The issue's own example.
    (ISSUE, ORDER, True),
    (ISSUE, {**ORDER, "detail": {"amount": 999}}, False),
    (ISSUE, {**ORDER, "detail": {"currency": "EUR"}}, False),
    (ISSUE, {**ORDER, "source": "shop.returns"}, False),
    # Literals: exact, case-sensitive, numbers numerically, a string never a number.
    ({"source": ["shop.orders"]}, ORDER, True),
    ({"source": ["Shop.Orders"]}, ORDER, False),
    ({"source": ["a", "shop.orders"]}, ORDER, True),
    (on("n", 5), event(n=5), True),
    (on("n", 5), event(n=5.0), True),
    (on("n", 5.0), event(n=5), True),
    (on("n", 5), event(n="5"), False),
    (on("n", "5"), event(n=5), False),
    (on("ok", True), event(ok=True), True),
    (on("ok", True), event(ok=1), False),
    (on("n", 1), event(n=True), False),
    (on("ok", False), event(ok=False), True),
    (on("v", None), event(v=None), True),
    (on("v", None), event(v="null"), False),
    (on("v", None), event(), False),
    (on("v", ""), event(v=""), True),
    # Fields the pattern does not name are ignored; every named one must match.
    ({"detail-type": ["OrderPlaced"]}, ORDER, True),
    ({"source": ["shop.orders"], "detail-type": ["Other"]}, ORDER, False),
    # Nested fields, and objects inside arrays.
    ({"detail": {"currency": ["EUR"]}}, ORDER, True),
    ({"detail": {"items": {"sku": ["A1"]}}}, ORDER, True),
    ({"detail": {"items": {"sku": ["B2"]}}}, ORDER, False),
    ({"detail": {"items": {"sku": ["A1"], "qty": [2]}}}, ORDER, True),
    (
        {"detail": {"items": {"sku": ["A1"], "qty": [3]}}},
        event(items=[{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 3}]),
        False,
    ),
    ({"detail": {"a": {"b": {"c": ["deep"]}}}}, event(a={"b": {"c": "deep"}}), True),
    ({"detail": {"a": {"b": ["x"]}}}, event(a="x"), False),
    # Arrays in events: any element.
    (on("tags", "red"), event(tags=["blue", "red"]), True),
    (on("tags", "red"), event(tags=["blue"]), False),
    (on("tags", "red"), event(tags=[]), False),
    (on("tags", {"prefix": "re"}), event(tags=["blue", "red"]), True),
    (on("n", {"numeric": [">", 10]}), event(n=[1, 20]), True),
    # prefix, suffix, equals-ignore-case.
    (on("f", {"prefix": "img/"}), event(f="img/cat.png"), True),
    (on("f", {"prefix": "img/"}), event(f="IMG/cat.png"), False),
    (on("f", {"prefix": {"equals-ignore-case": "img/"}}), event(f="IMG/cat.png"), True),
    (on("f", {"prefix": "1"}), event(f=12), False),
    (on("f", {"suffix": ".png"}), event(f="cat.png"), True),
    (on("f", {"suffix": ".png"}), event(f="cat.PNG"), False),
    (on("f", {"suffix": {"equals-ignore-case": ".png"}}), event(f="cat.PNG"), True),
    (on("f", {"suffix": ".png"}), event(f="cat.jpg"), False),
    (on("s", {"equals-ignore-case": "Ready"}), event(s="rEaDy"), True),
    (on("s", {"equals-ignore-case": "Ready"}), event(s="ready!"), False),
    # wildcard.
    (on("f", {"wildcard": "dir/*.png"}), event(f="dir/a/b.png"), True),
    (on("f", {"wildcard": "dir/*.png"}), event(f="dir/.png"), True),
    (on("f", {"wildcard": "dir/*.png"}), event(f="dir/a.png.bak"), False),
    (on("f", {"wildcard": "*"}), event(f=""), True),
    (on("f", {"wildcard": "a.c"}), event(f="abc"), False),
    (on("f", {"wildcard": "a\\*"}), event(f="a*"), True),
    (on("f", {"wildcard": "a\\*"}), event(f="ab"), False),
    (on("f", {"wildcard": "a\\\\*"}), event(f="a\\b"), True),
    (on("f", {"wildcard": "*"}), event(f=1), False),
    # anything-but: a present value that is none of these.
    (on("s", {"anything-but": "init"}), event(s="running"), True),
    (on("s", {"anything-but": "init"}), event(s="init"), False),
    (on("s", {"anything-but": "init"}), event(), False),
    (on("s", {"anything-but": ["a", "b"]}), event(s="b"), False),
    (on("s", {"anything-but": ["a", "b"]}), event(s="c"), True),
    (on("n", {"anything-but": [1, 2]}), event(n=2.0), False),
    (on("n", {"anything-but": 1}), event(n="1"), True),
    (on("s", {"anything-but": {"prefix": "us-"}}), event(s="eu-west-1"), True),
    (on("s", {"anything-but": {"prefix": "us-"}}), event(s="us-east-1"), False),
    (on("s", {"anything-but": {"suffix": ".png"}}), event(s="a.jpg"), True),
    (on("s", {"anything-but": {"suffix": ".png"}}), event(s="a.png"), False),
    (on("s", {"anything-but": {"equals-ignore-case": "init"}}), event(s="INIT"), False),
    (on("s", {"anything-but": {"equals-ignore-case": ["a", "b"]}}), event(s="B"), False),
    (on("s", {"anything-but": {"equals-ignore-case": ["a", "b"]}}), event(s="c"), True),
    (on("s", {"anything-but": {"wildcard": "*/lib/*"}}), event(s="src/lib/x"), False),
    (on("s", {"anything-but": {"wildcard": "*/lib/*"}}), event(s="src/app/x"), True),
    (on("s", {"anything-but": "a"}), event(s=["a", "b"]), True),
    (on("s", {"anything-but": "a"}), event(s=["a"]), False),
    # numeric: numbers only.
    (on("n", {"numeric": [">", 0, "<=", 5]}), event(n=5), True),
    (on("n", {"numeric": [">", 0, "<=", 5]}), event(n=0), False),
    (on("n", {"numeric": [">", 0, "<=", 5]}), event(n=5.01), False),
    (on("n", {"numeric": [">=", 0, "<", 5]}), event(n=0), True),
    (on("n", {"numeric": ["<", 5, ">=", 0]}), event(n=5), False),
    (on("n", {"numeric": ["=", 3]}), event(n=3.0), True),
    (on("n", {"numeric": ["=", 3]}), event(n=4), False),
    (on("n", {"numeric": [">", 0]}), event(n="7"), False),
    (on("n", {"numeric": [">", 0]}), event(n=True), False),
    (on("n", {"numeric": [">", -1.5]}), event(n=-1), True),
    # exists, and missing fields.
    (on("x", {"exists": True}), event(x=1), True),
    (on("x", {"exists": True}), event(x=None), True),
    (on("x", {"exists": True}), event(), False),
    (on("x", {"exists": False}), event(), True),
    (on("x", {"exists": False}), event(x="here"), False),
    (on("x", {"exists": False}), event(x=[]), True),
    (on("x", {"exists": True}), event(x={"y": 1}), False),
    ({"detail": {"x": [{"exists": False}]}}, {"source": "no detail"}, True),
    ({"detail": {"x": [{"exists": True}]}}, {"source": "no detail"}, False),
    ({"detail": {"x": {"y": [{"exists": False}]}}}, event(), True),
    (on("x", {"prefix": "a"}), event(), False),
    (on("x", {"numeric": [">", 0]}), event(), False),
    (on("x", "a", {"exists": False}), event(), True),
    # cidr.
    ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.0.7"}, True),
    ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.1.7"}, False),
    ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "2001:db8::1"}, False),
    ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "not an ip"}, False),
    ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": 167772167}, False),
    ({"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db8::1"}, True),
    ({"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db9::1"}, False),
    # $or, at the top and nested, with the object's other keys ANDed.
    (
        {"$or": [{"source": ["a"]}, {"detail-type": ["b"]}]},
        {"source": "x", "detail-type": "b"},
        True,
    ),
    (
        {"$or": [{"source": ["a"]}, {"detail-type": ["b"]}]},
        {"source": "x", "detail-type": "c"},
        False,
    ),
    (
        {
            "source": ["shop.orders"],
            "$or": [{"detail-type": ["X"]}, {"detail": {"currency": ["EUR"]}}],
        },
        ORDER,
        True,
    ),
    (
        {"source": ["other"], "$or": [{"detail-type": ["X"]}, {"detail": {"currency": ["EUR"]}}]},
        ORDER,
        False,
    ),
    (
        {"detail": {"$or": [{"amount": [{"numeric": ["<", 10]}]}, {"currency": ["EUR"]}]}},
        ORDER,
        True,
    ),
    (
        {"detail": {"$or": [{"amount": [{"numeric": ["<", 10]}]}, {"currency": ["USD"]}]}},
        ORDER,
        False,
    ),
    (
        {"detail": {"$or": [{"c": [1]}, {"$or": [{"a": [2]}, {"b": [3]}]}]}},
        event(b=3),
        True,
    ),
]


@pytest.mark.parametrize(("pattern", "event_", "expected"), CASES)
def test_matches(pattern: dict[str, Any], event_: dict[str, Any], expected: bool) -> None:
    assert matches(check_pattern(pattern), event_) is expected


def test_check_pattern_returns_the_pattern() -> None:
    assert check_pattern(ISSUE) is ISSUE


def deep(levels: int) -> dict[str, Any]:
    pattern: dict[str, Any] = {"x": ["leaf"]}
    for _ in range(levels - 1):
        pattern = {"d": pattern}
    return pattern


BAD = [
    (["source"], "pattern must be an object"),
    ("source", "pattern must be an object"),
    ({}, "pattern is empty: it would match every event"),
    ({"detail": {}}, "pattern.detail is empty"),
    (
        {"source": "shop.orders"},
        'pattern.source must be an object or a non-empty array such as ["shop.orders"]',
    ),
    ({"source": []}, "pattern.source must be an object or a non-empty array, got an empty array"),
    ({"source": 5}, "pattern.source must be an object or a non-empty array such as [5]"),
    (
        {"source": [["a"]]},
        "pattern.source[0] must be a string, number, true/false, null or an object",
    ),
    ({"detail": {"amount": [{}]}}, "pattern.detail.amount[0] must be a string, number"),
    (
        {"detail": {"amount": [{"prefx": "a"}]}},
        "pattern.detail.amount[0]: unknown operator 'prefx'; did you mean 'prefix'?",
    ),
    ({"a": [{"nmeric": [">", 1]}]}, "did you mean 'numeric'?"),
    ({"a": [{"zzz": 1}]}, "unknown operator 'zzz'; allowed: prefix, suffix"),
    (
        {"a": [{"prefix": "a", "suffix": "b"}]},
        "pattern.a[0] must be a string, number, true/false, null or an object with one operator",
    ),
    ({"a": [{"prefix": 1}]}, "pattern.a[0].prefix must be a string or"),
    (
        {"a": [{"prefix": {"equals-ignore-case": 1}}]},
        "pattern.a[0].prefix.equals-ignore-case must be a string",
    ),
    (
        {"a": [{"prefix": {"ignore-case": "x"}}]},
        'must be a string or {"equals-ignore-case": "..."}',
    ),
    ({"a": [{"suffix": None}]}, "pattern.a[0].suffix must be a string or"),
    (
        {"a": [{"equals-ignore-case": ["x"]}]},
        "pattern.a[0].equals-ignore-case must be a string, got list",
    ),
    ({"a": [{"wildcard": 3}]}, "pattern.a[0].wildcard must be a string"),
    ({"a": [{"wildcard": "a**b"}]}, "consecutive '*' are not allowed"),
    ({"a": [{"wildcard": "a\\b"}]}, "a backslash may only escape"),
    ({"a": [{"exists": "true"}]}, "pattern.a[0].exists must be true or false, got str"),
    ({"a": [{"exists": 1}]}, "pattern.a[0].exists must be true or false"),
    ({"a": [{"numeric": [">", "1"]}]}, "pattern.a[0].numeric[1] must be a number, got str"),
    ({"a": [{"numeric": [">", True]}]}, "pattern.a[0].numeric[1] must be a number"),
    ({"a": [{"numeric": ["!=", 1]}]}, "pattern.a[0].numeric[0]: bad operator '!='"),
    (
        {"a": [{"numeric": [">", 1, ">=", 2]}]},
        "takes one lower (>, >=) and one upper (<, <=) bound",
    ),
    ({"a": [{"numeric": ["<", 1, "<=", 2]}]}, "takes one lower"),
    ({"a": [{"numeric": ["=", 1, "<", 2]}]}, "or one ="),
    ({"a": [{"numeric": [">", 5, "<", 2]}]}, "the lower bound 5 is not below the upper bound 2"),
    ({"a": [{"numeric": [">", 1, "<"]}]}, "must be [op, number] or [op, number, op, number]"),
    ({"a": [{"numeric": 5}]}, "pattern.a[0].numeric must be [op, number]"),
    ({"a": [{"cidr": "10.0.0.0/33"}]}, "pattern.a[0].cidr: not an IPv4 or IPv6 CIDR block"),
    ({"a": [{"cidr": "banana"}]}, "not an IPv4 or IPv6 CIDR block"),
    ({"a": [{"cidr": 10}]}, "pattern.a[0].cidr must be a string"),
    ({"a": [{"anything-but": []}]}, "must be a non-empty array of all strings or all numbers"),
    ({"a": [{"anything-but": ["a", 1]}]}, "all strings or all numbers"),
    (
        {"a": [{"anything-but": None}]},
        "pattern.a[0].anything-but must be a string, number, array or object",
    ),
    (
        {"a": [{"anything-but": {"numeric": [">", 1]}}]},
        "takes an object with one of prefix, suffix",
    ),
    ({"a": [{"anything-but": {"prefix": 1}}]}, "pattern.a[0].anything-but.prefix must be a string"),
    (
        {"a": [{"anything-but": {"equals-ignore-case": [1]}}]},
        "anything-but.equals-ignore-case[0] must be a string",
    ),
    ({"a": [{"anything-but": {"equals-ignore-case": []}}]}, "must not be an empty array"),
    ({"$or": [{"a": ["x"]}]}, "pattern.$or must be an array of at least 2 patterns"),
    ({"$or": {"a": ["x"]}}, "pattern.$or must be an array of at least 2 patterns"),
    ({"$or": [{"a": ["x"]}, ["b"]]}, "pattern.$or[1] must be an object"),
    ({"$or": [{"a": ["x"]}, {}]}, "pattern.$or[1] is empty"),
    ({"$or": [{"a": ["x"]}, {"b": [{"prefx": "y"}]}]}, "pattern.$or[1].b[0]: unknown operator"),
    ({"detail": {"$or": [{"a": ["x"]}, {"b": "y"}]}}, "pattern.detail.$or[1].b must be an object"),
    ({"$and": [{"a": ["x"]}, {"b": ["y"]}]}, "unknown key '$and'; the only $ key is '$or'"),
    (deep(11), "nests deeper than 10 levels"),
    ({"a": ["x" * 2100]}, "bytes of JSON; at most 2048 are allowed"),
]


@pytest.mark.parametrize(("pattern", "message"), BAD)
def test_bad_patterns(pattern: object, message: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        check_pattern(pattern)
    assert message in str(caught.value)


def test_where_prefixes_the_message() -> None:
    with pytest.raises(InvalidSpec, match=r"^mlambda\.toml: triggers\[2\]\.pattern\.a\[0\]"):
        check_pattern({"a": [{"prefx": "x"}]}, where="mlambda.toml: triggers[2].pattern")


def test_limits_are_inclusive() -> None:
    check_pattern(deep(10))
    fits = {"a": ["x" * (2048 - len(json.dumps({"a": [""]}, separators=(",", ":"))))]}
    assert check_pattern(fits) is fits
