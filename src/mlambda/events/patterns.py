"""EventBridge event patterns: checking one, and matching an event against it (pure).

A ``[[triggers]] type = "rule"`` function is fed the events on the platform's bus that match its
pattern. A pattern is a JSON object shaped like the events it matches: a nested object descends
into the event's nested object (into each object of an array, any of which may match), and a leaf
is a non-empty array of matchers, any of which may match. Every key must match; fields the
pattern does not name are ignored. Where the event holds an array of values, the leaf matches if
any of them does. A missing field (or one that holds an object, or an empty array) has no value:
only ``{"exists": false}`` matches it.

Matchers, as Amazon EventBridge's content filtering defines them:

- a literal string, number, ``true``/``false`` or ``null``: exact (numbers compare numerically,
  so 5 matches 5.0; strings are case-sensitive; a string never equals a number);
- ``{"prefix": "abc"}``, ``{"suffix": ".png"}``, either with ``{"equals-ignore-case": "..."}``
  as its value; ``{"equals-ignore-case": "x"}``;
- ``{"wildcard": "dir/*.png"}``: ``*`` matches any run of characters, ``\\*`` a star, ``\\\\``
  a backslash;
- ``{"anything-but": value | [values] | {"prefix" | "suffix" | "equals-ignore-case" |
  "wildcard": ...}}``: a present value that is none of these;
- ``{"numeric": [">", 0, "<=", 5]}``: ``<``, ``<=``, ``=``, ``>=``, ``>``, at most one lower and
  one upper bound, or a single ``=``; numbers only, not numeric strings;
- ``{"exists": true | false}``;
- ``{"cidr": "10.0.0.0/24"}``: an IPv4 or IPv6 address in a string.

``"$or": [pattern, pattern, ...]`` in an object at any level: the object matches if its other
keys match and at least one of the alternatives matches the same event object.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import math
import operator
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeGuard

from mlambda.errors import InvalidSpec

MAX_BYTES = 2048  # EventBridge's limit on a pattern's JSON
MAX_DEPTH = 10  # nested objects, the top one included
OR = "$or"
LOWER = {">": operator.gt, ">=": operator.ge}
UPPER = {"<": operator.lt, "<=": operator.le}
COMPARE = {**LOWER, **UPPER, "=": operator.eq}
_NO_VALUE = object()
_WILDCARD = re.compile(r"(?:[^\\]|\\[*\\])*", re.S)


def check_pattern(pattern: object, *, where: str = "pattern") -> dict[str, Any]:
    """Return ``pattern`` if it is a valid event pattern; raise InvalidSpec naming the fault.

    ``where`` prefixes the path in each message (``mlambda.toml: triggers[2].pattern``).
    """
    if not isinstance(pattern, dict):
        raise InvalidSpec(f"{where} must be an object of event fields, got {_kind(pattern)}")
    _check_object(pattern, where, 1)
    size = len(json.dumps(pattern, separators=(",", ":")).encode())
    if size > MAX_BYTES:
        raise InvalidSpec(f"{where} is {size} bytes of JSON; at most {MAX_BYTES} are allowed")
    return pattern


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether ``event`` matches ``pattern`` (as ``check_pattern`` returned it)."""
    return _match_object(pattern, event)


def _check_object(pattern: dict[str, Any], where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidSpec(f"{where} nests deeper than {MAX_DEPTH} levels of objects")
    if not pattern:
        raise InvalidSpec(f"{where} is empty: it would match every event; name a field to match")
    for key, value in pattern.items():
        path = f"{where}.{key}"
        if key == OR:
            _check_or(value, path, depth)
        elif not isinstance(key, str) or key.startswith("$"):
            raise InvalidSpec(f"{path}: unknown key {key!r}; the only $ key is {OR!r}")
        elif isinstance(value, dict):
            _check_object(value, path, depth + 1)
        else:
            _check_leaf(value, path)


def _check_or(value: object, where: str, depth: int) -> None:
    if not isinstance(value, list) or len(value) < 2:
        raise InvalidSpec(f"{where} must be an array of at least 2 patterns, got {_kind(value)}")
    for i, alternative in enumerate(value):
        if not isinstance(alternative, dict):
            raise InvalidSpec(f"{where}[{i}] must be an object, got {_kind(alternative)}")
        _check_object(alternative, f"{where}[{i}]", depth)


def _check_leaf(value: object, where: str) -> None:
    if not isinstance(value, list) or not value:
        hint = f" such as [{json.dumps(value)}]" if _is_literal(value) else ""
        raise InvalidSpec(
            f"{where} must be an object or a non-empty array{hint}, got {_kind(value)}"
        )
    for i, matcher in enumerate(value):
        _check_matcher(matcher, f"{where}[{i}]")


def _check_matcher(matcher: object, where: str) -> None:
    if _is_literal(matcher):
        return
    if not isinstance(matcher, dict) or len(matcher) != 1:
        raise InvalidSpec(
            f"{where} must be a string, number, true/false, null or an object with one operator "
            f"({', '.join(OPERATORS)}), got {_kind(matcher)}"
        )
    [(name, arg)] = matcher.items()
    if name not in _OPERATORS:
        close = difflib.get_close_matches(str(name), OPERATORS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(OPERATORS)}"
        raise InvalidSpec(f"{where}: unknown operator {name!r}{hint}")
    _OPERATORS[name][0](arg, f"{where}.{name}")


def _check_string(arg: object, where: str) -> None:
    if not isinstance(arg, str):
        raise InvalidSpec(f"{where} must be a string, got {_kind(arg)}")


def _check_affix(arg: object, where: str) -> None:
    if isinstance(arg, dict) and list(arg) == ["equals-ignore-case"]:
        _check_string(arg["equals-ignore-case"], f"{where}.equals-ignore-case")
    elif not isinstance(arg, str):
        raise InvalidSpec(f'{where} must be a string or {{"equals-ignore-case": "..."}}')


def _check_wildcard(arg: object, where: str) -> None:
    _check_string(arg, where)
    if not _WILDCARD.fullmatch(str(arg)):
        raise InvalidSpec(f"{where}: a backslash may only escape '*' or '\\'")
    if "**" in "".join("*" if t is None else "." for t in _tokens(str(arg))):
        raise InvalidSpec(f"{where}: consecutive '*' are not allowed")


def _check_strings(arg: object, where: str, each: Callable[[object, str], None]) -> None:
    items = arg if isinstance(arg, list) else [arg]
    if not items:
        raise InvalidSpec(f"{where} must not be an empty array")
    for i, item in enumerate(items):
        each(item, f"{where}[{i}]" if isinstance(arg, list) else where)


def _check_anything_but(arg: object, where: str) -> None:
    nested = {
        "prefix": _check_string,
        "suffix": _check_string,
        "equals-ignore-case": lambda a, w: _check_strings(a, w, _check_string),
        "wildcard": lambda a, w: _check_strings(a, w, _check_wildcard),
    }
    if isinstance(arg, dict):
        if len(arg) != 1 or next(iter(arg)) not in nested:
            raise InvalidSpec(f"{where} takes an object with one of {', '.join(nested)}")
        [(name, value)] = arg.items()
        nested[name](value, f"{where}.{name}")
    elif isinstance(arg, list):
        if not arg or not (all(map(_is_number, arg)) or all(isinstance(a, str) for a in arg)):
            raise InvalidSpec(f"{where} must be a non-empty array of all strings or all numbers")
    elif not (isinstance(arg, str) or _is_number(arg)):
        raise InvalidSpec(f"{where} must be a string, number, array or object, got {_kind(arg)}")


def _check_numeric(arg: object, where: str) -> None:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise InvalidSpec(f"{where} must be [op, number] or [op, number, op, number], not {arg!r}")
    for i in range(0, len(arg), 2):
        if not isinstance(arg[i], str) or arg[i] not in COMPARE:
            raise InvalidSpec(f"{where}[{i}]: bad operator {arg[i]!r}; use {', '.join(COMPARE)}")
        if not _is_number(arg[i + 1]) or not math.isfinite(arg[i + 1]):
            raise InvalidSpec(f"{where}[{i + 1}] must be a number, got {_kind(arg[i + 1])}")
    ops = arg[::2]
    if len(ops) == 2 and ("=" in ops or (ops[0] in LOWER) == (ops[1] in LOWER)):
        raise InvalidSpec(f"{where} takes one lower (>, >=) and one upper (<, <=) bound, or one =")
    low, high = (arg[1], arg[-1]) if ops[0] in LOWER else (arg[-1], arg[1])
    if len(ops) == 2 and low >= high:
        raise InvalidSpec(f"{where}: the lower bound {low} is not below the upper bound {high}")


def _check_exists(arg: object, where: str) -> None:
    if not isinstance(arg, bool):
        raise InvalidSpec(f"{where} must be true or false, got {_kind(arg)}")


def _check_cidr(arg: object, where: str) -> None:
    _check_string(arg, where)
    try:
        _network(str(arg))
    except ValueError as exc:
        raise InvalidSpec(f"{where}: not an IPv4 or IPv6 CIDR block ({exc})") from None


def _match_object(pattern: dict[str, Any], obj: dict[str, Any]) -> bool:
    for key, sub in pattern.items():
        if key == OR:
            ok = any(_match_object(alternative, obj) for alternative in sub)
        elif isinstance(sub, dict):
            ok = any(_match_object(sub, child) for child in _objects(obj.get(key)))
        else:
            ok = _match_leaf(sub, _values(obj.get(key, _NO_VALUE)))
        if not ok:
            return False
    return True


def _objects(value: object) -> list[dict[str, Any]]:
    # A missing object is matched as an empty one, so that {"exists": false} holds beneath it.
    found: list[dict[str, Any]] = [v for v in _flatten(value) if isinstance(v, dict)]
    return found or [{}]


def _values(value: object) -> list[object]:
    # Objects are not values: EventBridge matches leaves, and an object is no leaf.
    return [] if value is _NO_VALUE else [v for v in _flatten(value) if not isinstance(v, dict)]


def _flatten(value: object) -> Iterator[object]:
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def _match_leaf(matchers: list[Any], values: list[object]) -> bool:
    for matcher in matchers:
        if isinstance(matcher, dict) and "exists" in matcher:
            if bool(values) == matcher["exists"]:
                return True
        elif any(_test(matcher, value) for value in values):
            return True
    return False


def _test(matcher: object, value: object) -> bool:
    if not isinstance(matcher, dict):
        return _equal(matcher, value)
    [(name, arg)] = matcher.items()
    return _OPERATORS[name][1](arg, value)


def _equal(literal: object, value: object) -> bool:
    if _is_number(literal) and _is_number(value):
        return literal == value
    return type(literal) is type(value) and literal == value


def _affix(has: Callable[[str, str], bool]) -> Callable[[Any, object], bool]:
    def test(arg: Any, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if isinstance(arg, dict):
            return has(value.casefold(), arg["equals-ignore-case"].casefold())
        return has(value, str(arg))

    return test


def _ignore_case(arg: Any, value: object) -> bool:
    wanted = arg if isinstance(arg, list) else [arg]
    return isinstance(value, str) and any(value.casefold() == w.casefold() for w in wanted)


def _wildcard(arg: Any, value: object) -> bool:
    wanted = arg if isinstance(arg, list) else [arg]
    return isinstance(value, str) and any(_glob(w).fullmatch(value) for w in wanted)


def _anything_but(arg: Any, value: object) -> bool:
    if isinstance(arg, dict):
        return not _test(arg, value)
    excluded = arg if isinstance(arg, list) else [arg]
    return not any(_equal(e, value) for e in excluded)


def _numeric(arg: list[Any], value: object) -> bool:
    return _is_number(value) and all(
        COMPARE[op](value, bound) for op, bound in zip(arg[::2], arg[1::2], strict=True)
    )


def _cidr(arg: str, value: object) -> bool:
    try:
        return isinstance(value, str) and ipaddress.ip_address(value) in _network(arg)
    except ValueError:
        return False


# Each operator: how its argument is checked, and how it tests one value (exists: in _match_leaf).
_OPERATORS: dict[str, tuple[Callable[[object, str], None], Callable[[Any, object], bool]]] = {
    "prefix": (_check_affix, _affix(str.startswith)),
    "suffix": (_check_affix, _affix(str.endswith)),
    "equals-ignore-case": (_check_string, _ignore_case),
    "wildcard": (_check_wildcard, _wildcard),
    "anything-but": (_check_anything_but, _anything_but),
    "numeric": (_check_numeric, _numeric),
    "exists": (_check_exists, lambda arg, value: False),
    "cidr": (_check_cidr, _cidr),
}
OPERATORS = tuple(_OPERATORS)


@functools.lru_cache(maxsize=256)
def _glob(wildcard: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if t is None else re.escape(t) for t in _tokens(wildcard)), re.S)


def _tokens(wildcard: str) -> list[str | None]:
    """The wildcard's characters, unescaped; None for a star that matches any run."""
    return [None if t == "*" else t[-1] for t in re.findall(r"\\.|.", wildcard, re.S)]


@functools.lru_cache(maxsize=256)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_literal(value: object) -> bool:
    return value is None or isinstance(value, str | bool) or _is_number(value)


def _kind(value: object) -> str:
    return "an empty array" if value == [] else f"{type(value).__name__} {value!r:.60}"
