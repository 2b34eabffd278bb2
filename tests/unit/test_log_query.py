"""Which log lines a reader asked for, by table: since a time, containing a text, one
invocation's block (its handler's output included), and JSON lines for shipping."""

from __future__ import annotations

import json

import pytest

from mlambda.errors import InvalidRequest
from mlambda.observe.log_query import LogFilter, LogQuery, parse_query

LINES = [
    "2026-12-07T10:00:00.000Z START RequestId: aaa Version: $LATEST\n",
    "2026-12-07T10:00:00.000Z scoring order 1\n",
    "2026-12-07T10:00:00.000Z END RequestId: aaa\n",
    "2026-12-07T10:00:00.000Z REPORT RequestId: aaa\tDuration: 1.00 ms\n",
    "2026-12-07T10:05:00.000Z START RequestId: bbb Version: $LATEST\n",
    "2026-12-07T10:05:00.000Z scoring order 2\n",
    "2026-12-07T10:05:00.000Z END RequestId: bbb\n",
    "2026-12-07T10:05:00.000Z REPORT RequestId: bbb\tDuration: 2.00 ms\n",
]


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        (LogQuery(), list(range(8))),
        (LogQuery(request_id="bbb"), [4, 5, 6, 7]),
        (LogQuery(request_id="zzz"), []),
        (LogQuery(text="order 1"), [1]),
        (LogQuery(text="REPORT"), [3, 7]),
        (LogQuery(since="2026-12-07T10:01:00"), [4, 5, 6, 7]),
        (LogQuery(since="2026-12-07T10:01:00", text="order"), [5]),
        (LogQuery(request_id="aaa", text="order"), [1]),
    ],
)
def test_a_query_keeps_the_lines_asked_for(query, kept):
    assert list(LogFilter(query).select(LINES)) == [LINES[i] for i in kept]


def test_json_lines_carry_the_time_the_text_and_the_invocation():
    shown = [json.loads(line) for line in LogFilter(LogQuery(format="json")).select(LINES[:4])]
    assert shown[1] == {
        "timestamp": "2026-12-07T10:00:00.000Z",
        "message": "scoring order 1",
        "requestId": "aaa",
    }
    assert all(record["requestId"] == "aaa" for record in shown)


def test_since_is_an_age_made_a_timestamp():
    now = 1_796_000_000.0  # 2026-11-30T00:53:20Z
    assert parse_query("10m", "", "", "text", now).since == "2026-11-30T00:43:20.000Z"
    assert parse_query("", "x", "", "json", now) == LogQuery("", "x", "", "json")


@pytest.mark.parametrize(
    ("since", "format", "says"),
    [("ten", "text", "since must be like"), ("5", "text", "since"), ("1m", "xml", "format")],
)
def test_a_bad_query_is_refused(since, format, says):
    with pytest.raises(InvalidRequest, match=says):
        parse_query(since, "", "", format, 0.0)


def test_retention_cuts_the_lines_older_than_it_and_keeps_what_is_written_meanwhile(tmp_path):
    import asyncio

    from mlambda.observe.logs import LogSink

    sink = LogSink(tmp_path, max_bytes=1 << 20)
    day = 86400.0
    for n, age_days in enumerate((9, 8, 2, 1)):
        sink.write("f", [f"line {n}"], now=1_796_000_000.0 - age_days * day)
    sink.write("g", ["recent"], now=1_796_000_000.0 - day)
    (tmp_path / "old.log.1").write_text("2026-01-01T00:00:00.000Z ancient\n")

    async def expire_while_writing() -> int:
        expiring = asyncio.ensure_future(sink.expire(1_796_000_000.0 - 3 * day))
        await asyncio.sleep(0)  # the cut has started: this line is held, then appended
        sink.write("f", ["during the cut"], now=1_796_000_000.0)
        return await expiring

    assert asyncio.run(expire_while_writing()) == 2
    assert [line.split(" ", 1)[1] for line in sink.tail("f", 10)] == [
        "line 2\n", "line 3\n", "during the cut\n"
    ]  # fmt: skip
    assert [line.split(" ", 1)[1] for line in sink.tail("g", 10)] == ["recent\n"]
    assert not (tmp_path / "old.log.1").exists()
    sink.write("f", ["after"])
    assert sink.tail("f", 1)[0].endswith("after\n")
    sink.close()


def test_since_counts_milliseconds():
    query = parse_query("1s", "", "", "text", 1_796_000_001.2)  # since 00:53:20.200Z
    lines = ["2026-11-30T00:53:20.100Z older\n", "2026-11-30T00:53:20.300Z newer\n"]
    assert list(LogFilter(query).select(lines)) == [lines[1]]
