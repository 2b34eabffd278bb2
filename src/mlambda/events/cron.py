"""The schedule expressions of schedule triggers, read as AWS EventBridge reads them, and their
fire times as pure functions of the expression, a timezone and a moment.

``rate(N unit)``
    N a positive integer; unit minute(s), hour(s), day(s), or second(s) (mlambda's own
    extension), singular or plural whatever N is. Fires at ``anchor + k * period`` for every
    integer k >= 1 (the anchor is when the trigger was made); the timezone plays no part.

``cron(Minutes Hours Day-of-month Month Day-of-week Year)``
    Minutes 0-59, Hours 0-23, Day-of-month 1-31, Month 1-12 or JAN-DEC, Day-of-week 1-7 or
    SUN-SAT (1 = SUN, 7 = SAT), Year 1970-2199. Every field takes ``*``, lists ``a,b``, ranges
    ``a-b`` (never backwards) and increments ``a/n``, ``*/n`` and ``a-b/n``. Exactly one of
    Day-of-month and Day-of-week is ``?``. Day-of-month also takes ``L`` (the last day),
    ``LW`` (the last weekday) and ``NW`` (the weekday nearest day N, never in another month;
    no fire in a month without a day N); Day-of-week also takes ``L`` (Saturday), ``NL`` (the
    last weekday N of the month) and ``N#M`` (the M-th weekday N, M 1-5; no fire in a month
    without one). ``?``, ``L``, ``W`` and ``#`` stand alone in their field, never in a list.
    Names and letters are case-insensitive.

Cron times are wall-clock times in an IANA timezone, fired at zero seconds. A wall time that
does not exist (the spring-forward gap) is skipped that day; one that occurs twice (fall back)
fires once, at its first occurrence, as EventBridge Scheduler does.
"""

from __future__ import annotations

import calendar
import dataclasses
import difflib
import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from mlambda.errors import InvalidSpec

_RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# Every cron fire lies between these (years 1970-2199, offsets from UTC within 14 hours):
# clamping to them keeps datetime in range and bounds the search.
_LOW = -2 * 86400.0
_HIGH = datetime(2200, 1, 2, tzinfo=UTC).timestamp()
# A day's wall clock never steps back further than this (a fall back), so on the moment's own
# day a wall time further before (after) its own is certainly past (to come): not worth trying.
_MARGIN_MIN = 180
_FORMS = (
    "write rate(N unit), e.g. rate(5 minutes), or "
    "cron(Minutes Hours Day-of-month Month Day-of-week Year), e.g. cron(0 12 * * ? *)"
)


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    lo: int
    hi: int
    allowed: str
    names: str = ""  # the names of lo, lo + 1, ..., spaced


_PLAIN = "with , - * /"
_MINUTES = _Field("Minutes", 0, 59, f"0-59 {_PLAIN}")
_HOURS = _Field("Hours", 0, 23, f"0-23 {_PLAIN}")
_DOM = _Field("Day-of-month", 1, 31, f"1-31 {_PLAIN}, or alone ? L LW NW")
_MONTH_NAMES = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC"
_MONTH = _Field("Month", 1, 12, f"1-12 or JAN-DEC {_PLAIN}", _MONTH_NAMES)
_DOW_NAMES = "SUN MON TUE WED THU FRI SAT"
_DOW = _Field(
    "Day-of-week", 1, 7, f"1-7 or SUN-SAT (1 = SUN) {_PLAIN}, or alone ? L NL N#M", _DOW_NAMES
)
_YEAR = _Field("Year", 1970, 2199, f"1970-2199 {_PLAIN}")
_ITEM = re.compile(r"(\*|[A-Z0-9]+)(?:-([A-Z0-9]+))?(?:/([0-9]+))?", re.I)


@dataclasses.dataclass(frozen=True)
class DayRule:
    """The days of a month that fire, from the one day field that is not ``?``."""

    kind: str  # days | last | last_weekday | nearest | weekdays | last_of | nth
    values: frozenset[int] = frozenset()  # days of the month, or weekdays 1-7 (1 = SUN)
    n: int = 0  # nearest: the day; last_of and nth: the weekday
    m: int = 0  # nth: which one in the month, 1-5


@dataclasses.dataclass(frozen=True)
class CronFields:
    times: tuple[int, ...]  # minutes after local midnight, ascending
    days: DayRule
    months: tuple[int, ...]  # ascending
    years: tuple[int, ...]  # ascending


@dataclasses.dataclass(frozen=True)
class Schedule:
    expression: str
    period_s: float | None = None
    cron: CronFields | None = None


def parse_schedule(text: str, *, where: str = "schedule") -> Schedule:
    """Read a ``rate(...)`` or ``cron(...)`` expression; InvalidSpec names what is wrong."""
    found = re.fullmatch(r"\s*(rate|cron)\((.*)\)\s*", str(text), re.S)
    if found is None:
        raise InvalidSpec(f"{where}: {text!r} is not a schedule expression; {_FORMS}")
    if found[1] == "rate":
        return Schedule(text, period_s=_parse_rate(found[2], where))
    return Schedule(text, cron=_parse_cron(found[2], where))


def _parse_rate(inner: str, where: str) -> float:
    parts = inner.split()
    if len(parts) != 2:
        raise InvalidSpec(f"{where}: rate({inner}) takes a number and a unit, e.g. rate(5 minutes)")
    count, unit = parts
    if not (count.isascii() and count.isdigit()) or int(count) == 0:
        raise InvalidSpec(f"{where}: rate value {count!r} must be a positive integer")
    seconds = _RATE_UNITS.get(unit.lower().removesuffix("s"))
    if seconds is None:
        raise InvalidSpec(
            f"{where}: rate unit {unit!r} is not one of minute(s), hour(s), day(s), second(s)"
        )
    return float(int(count) * seconds)


def _parse_cron(inner: str, where: str) -> CronFields:
    parts = inner.split()
    if len(parts) != 6:
        raise InvalidSpec(
            f"{where}: cron({inner}) has {len(parts)} fields; it takes six: "
            "Minutes Hours Day-of-month Month Day-of-week Year"
        )
    minute, hour, dom, month, dow, year = parts
    minutes, hours = _parse_set(minute, _MINUTES, where), _parse_set(hour, _HOURS, where)
    return CronFields(
        times=tuple(sorted(h * 60 + m for h in hours for m in minutes)),
        days=_day_rule(dom, dow, where),
        months=tuple(sorted(_parse_set(month, _MONTH, where))),
        years=tuple(sorted(_parse_set(year, _YEAR, where))),
    )


def _bad(where: str, field: _Field, part: str, problem: str) -> InvalidSpec:
    return InvalidSpec(f"{where}: {field.name} {part!r}: {problem}; allowed: {field.allowed}")


def _parse_set(part: str, field: _Field, where: str) -> frozenset[int]:
    values: set[int] = set()
    for item in part.split(","):
        values.update(_parse_item(item, field, where))
    return frozenset(values)


def _parse_item(item: str, field: _Field, where: str) -> range:
    found = _ITEM.fullmatch(item)
    if found is None or (found[1] == "*" and found[2] is not None):
        raise _bad(where, field, item, "not understood")
    start, end, step = found.groups()
    if start == "*":
        lo, hi = field.lo, field.hi
    else:
        lo = _value(start, field, where)
        hi = _value(end, field, where) if end else (field.hi if step else lo)
    if lo > hi:
        raise _bad(where, field, item, "the range runs backwards; write the smaller value first")
    if step is not None and int(step) == 0:
        raise _bad(where, field, item, "the increment must be at least 1")
    return range(lo, hi + 1, int(step or 1))


def _value(text: str, field: _Field, where: str) -> int:
    if text.isdigit():
        value = int(text)
    elif text.upper() in (names := field.names.split()):
        value = field.lo + names.index(text.upper())
    else:
        raise _bad(where, field, text, "not a number or a name")
    if not field.lo <= value <= field.hi:
        raise _bad(where, field, text, "out of range")
    return value


def _day_rule(dom: str, dow: str, where: str) -> DayRule:
    if dom == "?" and dow == "?":
        raise InvalidSpec(
            f"{where}: Day-of-month and Day-of-week are both '?'; set one and leave the other '?'"
        )
    if dom != "?" and dow != "?":
        raise InvalidSpec(
            f"{where}: Day-of-month {dom!r} and Day-of-week {dow!r} cannot both be set; "
            "make one of them '?'"
        )
    return _dom_rule(dom, where) if dow == "?" else _dow_rule(dow, where)


def _dom_rule(part: str, where: str) -> DayRule:
    if part.upper() in ("L", "LW"):
        return DayRule("last" if part.upper() == "L" else "last_weekday")
    if found := re.fullmatch(r"([0-9]+)W", part, re.I):
        return DayRule("nearest", n=_value(found[1], _DOM, where))
    return DayRule("days", _parse_set(part, _DOM, where))


def _dow_rule(part: str, where: str) -> DayRule:
    if part.upper() == "L":
        return DayRule("weekdays", frozenset({7}))
    if found := re.fullmatch(r"([A-Z0-9]+)L", part, re.I):
        return DayRule("last_of", n=_value(found[1], _DOW, where))
    if found := re.fullmatch(r"([A-Z0-9]+)#([0-9]+)", part, re.I):
        if not 1 <= int(found[2]) <= 5:
            raise _bad(where, _DOW, part, "the number after # must be 1-5")
        return DayRule("nth", n=_value(found[1], _DOW, where), m=int(found[2]))
    return DayRule("weekdays", _parse_set(part, _DOW, where))


def next_fire(
    schedule: Schedule, after: float, timezone: str = "UTC", anchor: float = 0.0
) -> float | None:
    """The first fire time strictly after ``after`` (epoch seconds), or None if there is none."""
    if schedule.period_s is not None:
        return _next_rate(schedule.period_s, after, anchor)
    zone = _zone(timezone, "timezone")
    if after >= _HIGH:
        return None
    return _next_cron(_cron(schedule), max(after, _LOW), zone)


def previous_fire(
    schedule: Schedule, at_or_before: float, timezone: str = "UTC", anchor: float = 0.0
) -> float | None:
    """The last fire time at or before ``at_or_before`` (a rate's after its anchor), or None."""
    if schedule.period_s is not None:
        return _previous_rate(schedule.period_s, at_or_before, anchor)
    zone = _zone(timezone, "timezone")
    if at_or_before < _LOW:
        return None
    return _previous_cron(_cron(schedule), min(at_or_before, _HIGH), zone)


def check_timezone(name: str, *, where: str = "timezone") -> None:
    """Raise InvalidSpec, with a hint, unless ``name`` is an IANA timezone zoneinfo knows."""
    _zone(name, where)


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise InvalidSpec(f"{where}: unknown timezone {name!r}; {_zone_hint(name)}") from None


def _zone_hint(name: str) -> str:
    zones = sorted(available_timezones())
    same = {zone.lower(): zone for zone in zones}.get(str(name).lower())
    close = [same] if same else difflib.get_close_matches(str(name), zones, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return "write an IANA name such as 'UTC', 'Europe/Berlin' or 'America/New_York'"


def _cron(schedule: Schedule) -> CronFields:
    if schedule.cron is None:
        raise ValueError(f"{schedule!r} has neither a period nor cron fields")
    return schedule.cron


def _next_rate(period: float, after: float, anchor: float) -> float:
    return anchor + max(1, _rate_steps(period, after, anchor) + 1) * period


def _previous_rate(period: float, at: float, anchor: float) -> float | None:
    steps = _rate_steps(period, at, anchor)
    return anchor + steps * period if steps >= 1 else None


def _rate_steps(period: float, at: float, anchor: float) -> int:
    """The most periods after the anchor that end at or before ``at`` (0 or less before it)."""
    steps = math.floor((at - anchor) / period)
    # The division may round either way; settle on the exact multiple.
    while anchor + steps * period > at:
        steps -= 1
    while anchor + (steps + 1) * period <= at:
        steps += 1
    return steps


def _next_cron(cron: CronFields, after: float, zone: ZoneInfo) -> float | None:
    local = datetime.fromtimestamp(after, zone)
    today, now = local.date(), local.hour * 60 + local.minute
    # A fall back at midnight can put a later moment on an earlier date: start a day before.
    for day in _days_from(cron, today - timedelta(days=1)):
        lowest = now - _MARGIN_MIN - (day - today).days * 1440
        for minute in cron.times[bisect_left(cron.times, lowest) :]:
            fire = _fire_at(day, minute, zone)
            if fire is not None and fire > after:
                return fire
    return None


def _previous_cron(cron: CronFields, at: float, zone: ZoneInfo) -> float | None:
    local = datetime.fromtimestamp(at, zone)
    today, now = local.date(), local.hour * 60 + local.minute
    for day in _days_back_from(cron, today + timedelta(days=1)):
        highest = now + _MARGIN_MIN - (day - today).days * 1440
        for minute in reversed(cron.times[: bisect_right(cron.times, highest)]):
            fire = _fire_at(day, minute, zone)
            if fire is not None and fire <= at:
                return fire
    return None


def _fire_at(day: date, minute: int, zone: ZoneInfo) -> float | None:
    """The moment of a wall time (its first, when it occurs twice), None if it does not exist."""
    wall = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)
    fire = wall.timestamp()
    if datetime.fromtimestamp(fire, zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
        return None
    return fire


def _days_from(cron: CronFields, start: date) -> Iterator[date]:
    for year in cron.years:
        for month in cron.months if year >= start.year else ():
            if (year, month) >= (start.year, start.month):
                for day in _month_days(cron.days, year, month):
                    if (found := date(year, month, day)) >= start:
                        yield found


def _days_back_from(cron: CronFields, start: date) -> Iterator[date]:
    for year in reversed(cron.years):
        for month in reversed(cron.months) if year <= start.year else ():
            if (year, month) <= (start.year, start.month):
                for day in reversed(_month_days(cron.days, year, month)):
                    if (found := date(year, month, day)) <= start:
                        yield found


def _month_days(rule: DayRule, year: int, month: int) -> list[int]:
    first, length = calendar.monthrange(year, month)
    weekday = [0] + [(first + day) % 7 + 1 for day in range(1, length + 1)]  # 1 = SUN
    if rule.kind == "days":
        return [day for day in range(1, length + 1) if day in rule.values]
    if rule.kind == "weekdays":
        return [day for day in range(1, length + 1) if weekday[day] in rule.values]
    if rule.kind == "last":
        return [length]
    if rule.kind in ("last_weekday", "nearest"):
        near = length if rule.kind == "last_weekday" else rule.n
        return [_nearest_weekday(near, length, weekday[near])] if near <= length else []
    if rule.kind == "last_of":
        return [length - (weekday[length] - rule.n) % 7]
    day = 1 + (rule.n - weekday[1]) % 7 + 7 * (rule.m - 1)
    return [day] if day <= length else []


def _nearest_weekday(day: int, length: int, weekday: int) -> int:
    if weekday == 7:  # Saturday: the Friday before, unless that is last month
        return day + 2 if day == 1 else day - 1
    if weekday == 1:  # Sunday: the Monday after, unless that is next month
        return day - 2 if day == length else day + 1
    return day
