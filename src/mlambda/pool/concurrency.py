"""Concurrent executions, as Lambda counts them: a function with reserved concurrency runs at
most that many calls at once (the rest are throttled at once, not queued) and has them to
itself; every other function shares what the account's limit leaves over. Decisions are pure;
the counts are kept here, in memory, per gateway process."""

from __future__ import annotations

import collections
from collections.abc import Mapping

from mlambda.errors import InvalidSpec, Throttled

RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"


def min_unreserved(limit: int) -> int:
    """What reservations must leave to the functions without one (Lambda keeps 100)."""
    return min(100, limit // 10)


def check_reservation(limit: int, reserved: Mapping[str, int], name: str, wanted: int) -> None:
    """Pure: refuse a reservation that would leave the other functions too little."""
    if wanted < 0:
        raise InvalidSpec(f"ReservedConcurrentExecutions must be 0 or more, got {wanted}")
    others = sum(n for f, n in reserved.items() if f != name)
    floor = min_unreserved(limit)
    if others + wanted > limit - floor:
        raise InvalidSpec(
            f"Specified ReservedConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{floor}] "
            f"(the limit is {limit}, --concurrency-limit; {others} already reserved)"
        )


def refusal(
    limit: int, reserved: Mapping[str, int], running: Mapping[str, int], name: str
) -> str | None:
    """Pure: why one more call of ``name`` would be throttled now (a Reason), or None."""
    if name in reserved:
        return RESERVED_LIMIT if running.get(name, 0) >= reserved[name] else None
    shared = sum(n for f, n in running.items() if f not in reserved)
    return ACCOUNT_LIMIT if shared >= limit - sum(reserved.values()) else None


class ConcurrencyThrottled(Throttled):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def to_body(self) -> dict[str, object]:
        return {**super().to_body(), "Reason": self.reason}


class Concurrency:
    """Calls running now per function, admitted against the reservations and the limit."""

    def __init__(self, limit: int, reserved: Mapping[str, int] | None = None) -> None:
        self.limit = limit
        self.reserved: dict[str, int] = dict(reserved or {})
        self.running: collections.Counter[str] = collections.Counter()

    @property
    def unreserved(self) -> int:
        return self.limit - sum(self.reserved.values())

    def reserve(self, name: str, wanted: int | None) -> None:
        """Set (or, with None, remove) a function's reservation."""
        if wanted is None:
            self.reserved.pop(name, None)
            return
        check_reservation(self.limit, self.reserved, name, wanted)
        self.reserved[name] = wanted

    def admit(self, name: str) -> None:
        """Count one more running call of ``name``, or throttle it."""
        reason = refusal(self.limit, self.reserved, self.running, name)
        if reason == RESERVED_LIMIT:
            raise ConcurrencyThrottled(
                f"Rate Exceeded: {name!r} runs at most {self.reserved[name]} calls at once "
                "(its reserved concurrency)",
                reason,
            )
        if reason == ACCOUNT_LIMIT:
            raise ConcurrencyThrottled(
                f"Rate Exceeded: the platform runs at most {self.unreserved} calls at once of "
                f"functions without reserved concurrency (--concurrency-limit {self.limit})",
                reason,
            )
        self.running[name] += 1

    def done(self, name: str) -> None:
        self.running[name] -= 1
        if self.running[name] <= 0:
            del self.running[name]

    def forget(self, name: str) -> None:
        self.reserved.pop(name, None)
