"""Each function's last invocations, in memory, for the console: what its REPORT line says and
the timings its trace waterfall is drawn from (observe/invocation_spans.py)."""

from __future__ import annotations

import collections
import dataclasses

from mlambda.observe.invocation_spans import Timings

KEEP = 50  # per function


@dataclasses.dataclass(frozen=True)
class Recent:
    request_id: str
    version: str
    ended_at: float  # epoch seconds
    timings: Timings
    report: str  # the REPORT line
    error_type: str = ""
    trace_id: str = ""


class RecentInvocations:
    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._by_function: dict[str, collections.deque[Recent]] = {}

    def add(self, function: str, recent: Recent) -> None:
        found = self._by_function.get(function)
        if found is None:
            found = self._by_function[function] = collections.deque(maxlen=self.keep)
        found.append(recent)

    def of(self, function: str) -> list[Recent]:
        """Newest first."""
        return list(reversed(self._by_function.get(function, ())))

    def get(self, function: str, request_id: str) -> Recent | None:
        return next((r for r in self._by_function.get(function, ()) if r.request_id == request_id),
                    None)  # fmt: skip

    def forget(self, function: str) -> None:
        self._by_function.pop(function, None)
