"""Schedule expressions as EventBridge reads them: rate(...) against an anchor, cron(...) on the
wall clock of a timezone, daylight saving included, and the expressions that are refused."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from mlambda.errors import InvalidSpec
from mlambda.events.cron import check_timezone, next_fire, parse_schedule, previous_fire

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"


def at(tz: str, *fields: int, fold: int = 0) -> float:
    """The epoch seconds of a wall time in a timezone (its first occurrence unless fold=1)."""
    return datetime(*fields, tzinfo=ZoneInfo(tz), fold=fold).timestamp()


DAY = 86400.0


@pytest.mark.parametrize(
    ("expression", "period_s"),
    [
        ("rate(30 seconds)", 30.0),
        ("rate(1 second)", 1.0),
        ("rate(1 minute)", 60.0),
        ("rate(1 minutes)", 60.0),
        ("rate(5 minute)", 300.0),
        ("rate(2 hours)", 7200.0),
        ("rate(1 day)", DAY),
        ("rate(3 Days)", 3 * DAY),
        ("  rate( 10  minutes )  ", 600.0),
    ],
)
def test_a_rate_is_a_period_in_seconds(expression, period_s):
    schedule = parse_schedule(expression)
    assert schedule.period_s == period_s
    assert schedule.expression == expression


def test_a_cron_has_no_period():
    assert parse_schedule("cron(0 12 * * ? *)").period_s is None


@pytest.mark.parametrize(
    ("expression", "anchor", "after", "expected"),
    [
        ("rate(30 seconds)", 1000.0, 1000.0, 1030.0),
        ("rate(30 seconds)", 1000.0, 1029.9, 1030.0),
        ("rate(30 seconds)", 1000.0, 1030.0, 1060.0),
        ("rate(30 seconds)", 1000.0, 10.0, 1030.0),
        ("rate(5 minutes)", 0.0, 299.0, 300.0),
        ("rate(5 minutes)", 0.0, 300.0, 600.0),
        ("rate(1 minute)", 100.5, 50.0, 160.5),
        ("rate(2 hour)", 10.0, 7210.0, 14410.0),
        ("rate(1 day)", 1.8e9, 1.8e9 + 3 * DAY + 1, 1.8e9 + 4 * DAY),
        ("rate(3 days)", 1.8e9, 1.8e9 + 3 * DAY - 0.001, 1.8e9 + 3 * DAY),
    ],
)
def test_a_rate_fires_whole_periods_after_its_anchor(expression, anchor, after, expected):
    schedule = parse_schedule(expression)
    assert next_fire(schedule, after, anchor=anchor) == expected
    assert next_fire(schedule, after, BERLIN, anchor=anchor) == expected


@pytest.mark.parametrize(
    ("expression", "anchor", "at_or_before", "expected"),
    [
        ("rate(5 minutes)", 1000.0, 500.0, None),
        ("rate(5 minutes)", 1000.0, 1000.0, None),
        ("rate(5 minutes)", 1000.0, 1299.0, None),
        ("rate(5 minutes)", 1000.0, 1300.0, 1300.0),
        ("rate(5 minutes)", 1000.0, 1899.0, 1600.0),
        ("rate(1 hour)", 0.5, 7200.5, 7200.5),
        ("rate(10 seconds)", 0.0, 1e9 + 9, 1e9),
    ],
)
def test_a_rate_fired_last_at_the_last_whole_period(expression, anchor, at_or_before, expected):
    schedule = parse_schedule(expression)
    assert previous_fire(schedule, at_or_before, NEW_YORK, anchor=anchor) == expected


# 2027-01-01 is a Friday; 2027-05-01 a Saturday; 2027-08-01, 2027-01-31 and 2027-10-31 Sundays.
NEXT = [
    ("cron(0/5 * * * ? *)", "UTC", (2027, 1, 1, 10, 2), (2027, 1, 1, 10, 5)),
    ("cron(*/5 * * * ? *)", "UTC", (2027, 1, 1, 10, 5), (2027, 1, 1, 10, 10)),
    ("cron(0/5 * * * ? *)", "UTC", (2027, 1, 1, 10, 5, 30), (2027, 1, 1, 10, 10)),
    ("cron(0/5 * * * ? *)", "UTC", (2027, 12, 31, 23, 58), (2028, 1, 1, 0, 0)),
    ("cron(5-30/5 * * * ? *)", "UTC", (2027, 1, 1, 10, 30), (2027, 1, 1, 11, 5)),
    ("cron(0,30 9-17 * * ? *)", "UTC", (2027, 1, 1, 17, 30), (2027, 1, 2, 9, 0)),
    ("cron(0 2 * * ? *)", BERLIN, (2027, 1, 1, 2, 0), (2027, 1, 2, 2, 0)),
    ("cron(0 2 * * ? *)", BERLIN, (2027, 7, 1, 1, 59), (2027, 7, 1, 2, 0)),
    ("cron(0 9 ? * MON-FRI *)", "UTC", (2027, 1, 1, 9, 0), (2027, 1, 4, 9, 0)),
    ("cron(0 9 ? * mon-fri *)", "UTC", (2027, 1, 1, 8, 0), (2027, 1, 1, 9, 0)),
    ("cron(0 9 ? * 2-6 *)", "UTC", (2027, 1, 2, 0, 0), (2027, 1, 4, 9, 0)),
    ("cron(0 9 ? * SUN,7 *)", "UTC", (2027, 1, 1, 0, 0), (2027, 1, 2, 9, 0)),
    ("cron(15 10 1,15 * ? *)", "UTC", (2027, 1, 1, 10, 15), (2027, 1, 15, 10, 15)),
    ("cron(0 0 * * ? *)", "UTC", (2027, 1, 1, 0, 0), (2027, 1, 2, 0, 0)),
    ("cron(0 0 1 JAN,jul ? *)", "UTC", (2027, 1, 1, 0, 0), (2027, 7, 1, 0, 0)),
    ("cron(0 0 1 */3 ? *)", "UTC", (2027, 1, 1, 0, 0), (2027, 4, 1, 0, 0)),
    # L in Day-of-month: the month's last day.
    ("cron(0 0 L * ? *)", "UTC", (2027, 1, 1, 0, 0), (2027, 1, 31, 0, 0)),
    ("cron(0 0 L * ? *)", "UTC", (2027, 1, 31, 0, 0), (2027, 2, 28, 0, 0)),
    ("cron(0 0 L * ? *)", "UTC", (2028, 2, 1, 0, 0), (2028, 2, 29, 0, 0)),
    ("cron(0 0 l * ? *)", "UTC", (2027, 4, 1, 0, 0), (2027, 4, 30, 0, 0)),
    ("cron(0 0 LW * ? *)", "UTC", (2027, 1, 1, 0, 0), (2027, 1, 29, 0, 0)),
    # NW: the weekday nearest day N, never in another month.
    ("cron(0 0 1W * ? *)", "UTC", (2027, 4, 2, 0, 0), (2027, 5, 3, 0, 0)),
    ("cron(0 0 1W * ? *)", "UTC", (2027, 7, 2, 0, 0), (2027, 8, 2, 0, 0)),
    ("cron(0 0 15W * ? *)", "UTC", (2027, 5, 1, 0, 0), (2027, 5, 14, 0, 0)),
    ("cron(0 0 3w * ? *)", "UTC", (2027, 2, 1, 0, 0), (2027, 2, 3, 0, 0)),
    ("cron(0 0 31W * ? *)", "UTC", (2027, 10, 1, 0, 0), (2027, 10, 29, 0, 0)),
    ("cron(0 0 30W * ? *)", "UTC", (2027, 1, 31, 0, 0), (2027, 3, 30, 0, 0)),
    # Day-of-week L (Saturday), NL (the last weekday N) and N#M (the M-th weekday N).
    ("cron(0 0 ? * L *)", "UTC", (2027, 1, 1, 0, 0), (2027, 1, 2, 0, 0)),
    ("cron(0 0 ? * 6L *)", "UTC", (2027, 1, 1, 0, 0), (2027, 1, 29, 0, 0)),
    ("cron(0 0 ? * 6L *)", "UTC", (2027, 1, 29, 0, 0), (2027, 2, 26, 0, 0)),
    ("cron(0 0 ? * 1L *)", "UTC", (2027, 1, 1, 0, 0), (2027, 1, 31, 0, 0)),
    ("cron(0 0 ? * 3#2 *)", "UTC", (2027, 1, 1, 0, 0), (2027, 1, 12, 0, 0)),
    ("cron(0 0 ? * FRI#1 *)", "UTC", (2027, 1, 1, 0, 0), (2027, 2, 5, 0, 0)),
    ("cron(0 0 ? * 2#5 *)", "UTC", (2027, 1, 1, 0, 0), (2027, 3, 29, 0, 0)),
    # The Year field.
    ("cron(0 0 1 1 ? 2030)", "UTC", (2027, 1, 1, 0, 0), (2030, 1, 1, 0, 0)),
    ("cron(0 12 * * ? 2028-2029)", "UTC", (2027, 6, 1, 0, 0), (2028, 1, 1, 12, 0)),
    ("cron(0 12 1 1 ? 2027/2)", "UTC", (2027, 1, 1, 12, 0), (2029, 1, 1, 12, 0)),
    # Spring forward: 02:30 does not exist that day, so the day has no fire.
    ("cron(30 2 * * ? *)", BERLIN, (2027, 3, 27, 2, 30), (2027, 3, 29, 2, 30)),
    ("cron(30 2 * * ? *)", NEW_YORK, (2027, 3, 13, 2, 30), (2027, 3, 15, 2, 30)),
    ("cron(0/30 * * * ? *)", BERLIN, (2027, 3, 28, 1, 30), (2027, 3, 28, 3, 0)),
    ("cron(0 3 * * ? *)", BERLIN, (2027, 3, 27, 3, 0), (2027, 3, 28, 3, 0)),
    # Fall back: 02:30 occurs twice and fires at the first.
    ("cron(30 2 * * ? *)", BERLIN, (2027, 10, 30, 2, 30), (2027, 10, 31, 2, 30)),
    ("cron(30 1 * * ? *)", NEW_YORK, (2027, 11, 6, 1, 30), (2027, 11, 7, 1, 30)),
]


@pytest.mark.parametrize(("expression", "tz", "after", "expected"), NEXT)
def test_cron_fires_next_at_the_first_matching_wall_time(expression, tz, after, expected):
    fire = next_fire(parse_schedule(expression), at(tz, *after), tz)
    assert fire == at(tz, *expected)


@pytest.mark.parametrize(
    ("expression", "tz", "first", "then"),
    [
        ("cron(30 2 * * ? *)", BERLIN, (2027, 10, 31, 2, 30), (2027, 11, 1, 2, 30)),
        ("cron(30 * * * ? *)", BERLIN, (2027, 10, 31, 2, 30), (2027, 10, 31, 3, 30)),
        ("cron(0/15 * * * ? *)", BERLIN, (2027, 10, 31, 2, 45), (2027, 10, 31, 3, 0)),
        ("cron(30 1 * * ? *)", NEW_YORK, (2027, 11, 7, 1, 30), (2027, 11, 8, 1, 30)),
    ],
)
def test_a_wall_time_that_occurs_twice_fires_once(expression, tz, first, then):
    schedule = parse_schedule(expression)
    assert next_fire(schedule, at(tz, *first) - 1, tz) == at(tz, *first)
    assert next_fire(schedule, at(tz, *first), tz) == at(tz, *then)
    # The second occurrence is no fire: the one before it is the first.
    second = at(tz, *first, fold=1)
    assert second - at(tz, *first) == 3600
    assert previous_fire(schedule, second, tz) == at(tz, *first)


@pytest.mark.parametrize(
    ("expression", "tz", "at_or_before", "expected"),
    [
        ("cron(45 2 * * ? *)", BERLIN, (2027, 10, 31, 2, 40), (2027, 10, 31, 2, 45)),
        ("cron(50 1 * * ? *)", NEW_YORK, (2027, 11, 7, 1, 10), (2027, 11, 7, 1, 50)),
    ],
)
def test_in_the_repeated_hour_the_last_fire_can_show_a_later_wall_time(
    expression, tz, at_or_before, expected
):
    moment = at(tz, *at_or_before, fold=1)
    assert previous_fire(parse_schedule(expression), moment, tz) == at(tz, *expected)


PREVIOUS = [
    ("cron(0/5 * * * ? *)", "UTC", (2027, 1, 1, 10, 5), (2027, 1, 1, 10, 5)),
    ("cron(0/5 * * * ? *)", "UTC", (2027, 1, 1, 10, 4, 59), (2027, 1, 1, 10, 0)),
    ("cron(0/5 * * * ? *)", "UTC", (2027, 1, 1, 0, 0, 30), (2027, 1, 1, 0, 0)),
    ("cron(55 23 * * ? *)", "UTC", (2027, 1, 1, 0, 0), (2026, 12, 31, 23, 55)),
    ("cron(0 2 * * ? *)", BERLIN, (2027, 1, 2, 1, 59), (2027, 1, 1, 2, 0)),
    ("cron(0 9 ? * MON-FRI *)", "UTC", (2027, 1, 4, 8, 0), (2027, 1, 1, 9, 0)),
    ("cron(0 0 L * ? *)", "UTC", (2028, 3, 15, 0, 0), (2028, 2, 29, 0, 0)),
    ("cron(0 0 L * ? *)", "UTC", (2027, 5, 1, 0, 0), (2027, 4, 30, 0, 0)),
    ("cron(0 0 1W * ? *)", "UTC", (2027, 5, 2, 0, 0), (2027, 4, 1, 0, 0)),
    ("cron(0 0 31W * ? *)", "UTC", (2027, 10, 30, 0, 0), (2027, 10, 29, 0, 0)),
    ("cron(0 0 ? * 6L *)", "UTC", (2027, 2, 1, 0, 0), (2027, 1, 29, 0, 0)),
    ("cron(0 0 ? * 3#2 *)", "UTC", (2027, 2, 1, 0, 0), (2027, 1, 12, 0, 0)),
    ("cron(0 0 1 1 ? 2025)", "UTC", (2027, 1, 1, 0, 0), (2025, 1, 1, 0, 0)),
    ("cron(0 0 1 1 ? *)", "UTC", (2027, 1, 1, 0, 0), (2027, 1, 1, 0, 0)),
    ("cron(30 2 * * ? *)", BERLIN, (2027, 3, 28, 23, 0), (2027, 3, 27, 2, 30)),
    ("cron(30 2 * * ? *)", NEW_YORK, (2027, 3, 14, 23, 0), (2027, 3, 13, 2, 30)),
]


@pytest.mark.parametrize(("expression", "tz", "at_or_before", "expected"), PREVIOUS)
def test_cron_fired_last_at_the_last_matching_wall_time(expression, tz, at_or_before, expected):
    fire = previous_fire(parse_schedule(expression), at(tz, *at_or_before), tz)
    assert fire == at(tz, *expected)


@pytest.mark.parametrize(("expression", "tz", "after", "expected"), NEXT)
def test_the_previous_of_a_fire_is_itself(expression, tz, after, expected):
    fire = at(tz, *expected)
    assert previous_fire(parse_schedule(expression), fire, tz) == fire


@pytest.mark.parametrize("tz", ["UTC", BERLIN, NEW_YORK, "Asia/Kolkata"])
def test_cron_fires_at_zero_seconds(tz):
    schedule, moment = parse_schedule("cron(7/13 * * * ? *)"), at(tz, 2027, 3, 1, 0, 0, 17)
    for _ in range(200):
        moment = next_fire(schedule, moment, tz)
        assert moment is not None and moment % 60 == 0


@pytest.mark.parametrize(
    ("expression", "moment"),
    [
        ("cron(0 0 30 2 ? *)", (2027, 1, 1, 0, 0)),
        ("cron(0 0 31 4,6,9,11 ? *)", (2027, 1, 1, 0, 0)),
        ("cron(0 0 30W 2 ? *)", (2027, 1, 1, 0, 0)),
        ("cron(0 0 ? 2 2#5 2027)", (2026, 1, 1, 0, 0)),
        ("cron(0 0 1 1 ? 2020,2021)", (2027, 1, 1, 0, 0)),
        ("cron(0 0 * * ? 2199)", (2199, 12, 31, 0, 0)),
    ],
)
def test_an_expression_that_never_fires_again_has_no_next(expression, moment):
    schedule = parse_schedule(expression)
    started = time.perf_counter()
    assert next_fire(schedule, at(BERLIN, *moment), BERLIN) is None
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("expression", "moment"),
    [
        ("cron(0 0 30 2 ? *)", (2027, 1, 1, 0, 0)),
        ("cron(0 0 ? 2 2#5 2027)", (2028, 1, 1, 0, 0)),
        ("cron(0 0 1 1 ? 2030)", (2027, 1, 1, 0, 0)),
        ("cron(0 0 * * ? *)", (1969, 12, 31, 0, 0)),
    ],
)
def test_an_expression_that_never_fired_has_no_previous(expression, moment):
    schedule = parse_schedule(expression)
    started = time.perf_counter()
    assert previous_fire(schedule, at("UTC", *moment), "UTC") is None
    assert time.perf_counter() - started < 0.5


def test_a_far_future_moment_has_no_next_and_a_past_previous():
    schedule = parse_schedule("cron(0 0 * * ? *)")
    assert next_fire(schedule, 1e12) is None
    assert previous_fire(schedule, 1e12) == at("UTC", 2199, 12, 31, 0, 0)


def test_a_typical_next_fire_is_quick():
    schedule, moment = parse_schedule("cron(0/5 * * * ? *)"), at(BERLIN, 2027, 1, 1, 0, 0)
    started = time.perf_counter()
    for step in range(1000):
        next_fire(schedule, moment + step * 61.0, BERLIN)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "is not a schedule expression"),
        ("every 5 minutes", "is not a schedule expression"),
        ("cron(0 12 * * ? *) extra", "is not a schedule expression"),
        ("CRON(0 12 * * ? *)", "is not a schedule expression"),
        ("rate(0 minutes)", "rate value '0' must be a positive integer"),
        ("rate(-5 minutes)", "must be a positive integer"),
        ("rate(1.5 hours)", "must be a positive integer"),
        ("rate(5 weeks)", "rate unit 'weeks' is not one of"),
        ("rate(5)", "takes a number and a unit"),
        ("rate(5 minutes please)", "takes a number and a unit"),
        ("cron(0 12 * * ?)", "has 5 fields; it takes six"),
        ("cron(0 12 * * ? * *)", "has 7 fields"),
        ("cron(60 * * * ? *)", "Minutes '60': out of range; allowed: 0-59"),
        ("cron(0 24 * * ? *)", "Hours '24': out of range"),
        ("cron(0 0 0 * ? *)", "Day-of-month '0': out of range"),
        ("cron(0 0 32 * ? *)", "Day-of-month '32': out of range"),
        ("cron(0 0 1 13 ? *)", "Month '13': out of range"),
        ("cron(0 0 1 FOO ? *)", "Month 'FOO': not a number or a name"),
        ("cron(0 0 ? * 0 *)", "Day-of-week '0': out of range; allowed: 1-7 or SUN-SAT"),
        ("cron(0 0 ? * 8 *)", "Day-of-week '8': out of range"),
        ("cron(0 0 1 1 ? 1969)", "Year '1969': out of range"),
        ("cron(0 0 1 1 ? 2200)", "Year '2200': out of range"),
        ("cron(a * * * ? *)", "Minutes 'a': not a number or a name"),
        ("cron(0 JAN * * ? *)", "Hours 'JAN': not a number or a name"),
        ("cron(0 0 * * * *)", "cannot both be set; make one of them '?'"),
        ("cron(0 0 1 * MON *)", "cannot both be set"),
        ("cron(0 0 ? * ? *)", "both '?'"),
        ("cron(? 0 1 * ? *)", "Minutes '?': not understood"),
        ("cron(0 5-2 * * ? *)", "Hours '5-2': the range runs backwards"),
        ("cron(0 0 ? * FRI-MON *)", "Day-of-week 'FRI-MON': the range runs backwards"),
        ("cron(*/0 * * * ? *)", "Minutes '*/0': the increment must be at least 1"),
        ("cron(*-5 * * * ? *)", "Minutes '*-5': not understood"),
        ("cron(1,,2 * * * ? *)", "Minutes '': not understood"),
        ("cron(0 0 ? * 3#6 *)", "the number after # must be 1-5"),
        ("cron(0 0 ? * 3#0 *)", "the number after # must be 1-5"),
        ("cron(0 0 ? * 9#1 *)", "Day-of-week '9': out of range"),
        ("cron(0 0 ? * 9L *)", "Day-of-week '9': out of range"),
        ("cron(0 0 ? * 1#2,3 *)", "Day-of-week '1#2': not understood"),
        ("cron(0 0 0W * ? *)", "Day-of-month '0': out of range"),
        ("cron(0 0 L-2 * ? *)", "Day-of-month 'L': not a number or a name"),
        ("cron(0 0 1,L * ? *)", "Day-of-month 'L': not a number or a name"),
        ("cron(0 0 1W,15 * ? *)", "Day-of-month '1W': not a number or a name"),
        ("cron(0 0 1 * ? 20x7)", "Year '20x7': not a number or a name"),
        ("cron(0 0 1 * ? 2027/0)", "the increment must be at least 1"),
    ],
)
def test_a_bad_expression_is_refused_with_what_is_wrong(expression, message):
    with pytest.raises(InvalidSpec, match=r"^schedule: ") as raised:
        parse_schedule(expression)
    assert message in raised.value.message


def test_the_error_names_where_the_expression_was():
    where = "mlambda.toml: triggers[0].schedule"
    with pytest.raises(InvalidSpec) as raised:
        parse_schedule("cron(60 * * * ? *)", where=where)
    assert raised.value.message.startswith(f"{where}: Minutes '60'")


@pytest.mark.parametrize("name", ["UTC", BERLIN, NEW_YORK, "Asia/Kolkata"])
def test_a_known_timezone_passes(name):
    check_timezone(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Europe/Berln", "did you mean 'Europe/Berlin'?"),
        ("europe/berlin", "did you mean 'Europe/Berlin'?"),
        ("utc", "did you mean 'UTC'?"),
        ("", "unknown timezone ''"),
        ("Europe/Berlin/", "unknown timezone 'Europe/Berlin/'"),
        ("../etc/passwd", "unknown timezone '../etc/passwd'"),
        ("Nowhere", "unknown timezone 'Nowhere'"),
    ],
)
def test_an_unknown_timezone_is_refused_with_a_hint(name, message):
    with pytest.raises(InvalidSpec, match=r"^trigger\.timezone: unknown timezone") as raised:
        check_timezone(name, where="trigger.timezone")
    assert message in raised.value.message


def test_a_cron_with_an_unknown_timezone_is_refused():
    schedule = parse_schedule("cron(0 0 * * ? *)")
    with pytest.raises(InvalidSpec, match="unknown timezone 'Mars/Base'"):
        next_fire(schedule, 0.0, "Mars/Base")
