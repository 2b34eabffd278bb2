"""Which stored log lines a reader asked for (pure): those since a time, those containing a text,
those of one invocation, shown as text or as JSON lines for shipping.

A stored line is ``<ISO-8601 UTC timestamp> <text>``. An invocation's lines are written
together, from its ``START RequestId: ID`` line to its ``REPORT RequestId: ID`` line: a request
id selects that block, the handler's own output included.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable, Iterator

import msgspec

from mlambda.errors import InvalidRequest

FORMATS = ("text", "json")
_START = re.compile(r"START RequestId: (\S+)")
_REPORT = re.compile(r"REPORT RequestId: (\S+)")
_SINCE = re.compile(r"(\d+)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclasses.dataclass(frozen=True)
class LogQuery:
    since: str = ""  # an ISO-8601 UTC timestamp: lines at or after it
    text: str = ""  # lines containing it
    request_id: str = ""  # the lines of this invocation
    format: str = "text"

    @property
    def filters(self) -> bool:
        return bool(self.since or self.text or self.request_id)


def ago_seconds(since: str) -> int:
    """``30s``, ``10m``, ``2h`` or ``7d`` in seconds; a 400 otherwise."""
    match = _SINCE.fullmatch(since.strip())
    if match is None or int(match.group(1)) == 0:
        raise InvalidRequest(f"since must be like 30s, 10m, 2h or 7d, got {since!r}")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def parse_query(since: str, text: str, request_id: str, format: str, now: float) -> LogQuery:
    """The query's parameters checked; ``since`` is ``30s``, ``10m``, ``2h`` or ``7d`` ago."""
    stamp = ""
    if since:
        # To the millisecond, as lines are stamped: "the last 1s" leaves out a line 1.1 s old.
        ago = now - ago_seconds(since)
        whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ago))
        stamp = f"{whole}.{int(ago % 1 * 1000):03d}Z"
    if format not in FORMATS:
        raise InvalidRequest(f"format must be text or json, got {format!r}")
    return LogQuery(stamp, text, request_id, format)


class LogFilter:
    """Applies a query to lines in the order they were written (it follows invocations)."""

    def __init__(self, query: LogQuery) -> None:
        self.query = query
        self._current = ""  # the invocation whose block is being read
        self._request = ""  # the invocation of the line just read

    def select(self, lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            if self._wanted(line):
                yield self._shown(line)

    def _wanted(self, line: str) -> bool:
        query = self.query
        stamp, _, text = line.partition(" ")
        started = _START.match(text)
        if started:
            self._current = started.group(1)
        request = self._request = self._current
        if _REPORT.match(text):
            self._current = ""
        if query.request_id and request != query.request_id:
            return False
        if query.since and stamp < query.since:
            return False
        return not query.text or query.text in text

    def _shown(self, line: str) -> str:
        if self.query.format == "text":
            return line if line.endswith("\n") else line + "\n"
        stamp, _, text = line.rstrip("\n").partition(" ")
        record = {"timestamp": stamp, "message": text}
        if self._request:
            record["requestId"] = self._request
        return msgspec.json.encode(record).decode() + "\n"
