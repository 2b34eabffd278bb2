"""The durable queue of asynchronous invocations: the record every backend keeps, the contract
it keeps it by, and the pure rules of retry and expiry.

An accepted event is a Record in state ``queued``. A dispatcher leases it (``running``, one more
attempt, hidden from other leases until ``lease_until``), then acks it (``succeeded``), retries
it after a delay (``queued`` again), or ends it (``failed`` or ``expired``: the dead letters).
"""

from __future__ import annotations

import abc
import dataclasses
import json
import random
from collections.abc import Callable
from typing import Any

QUEUED, RUNNING, SUCCEEDED, FAILED, EXPIRED = "queued", "running", "succeeded", "failed", "expired"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, EXPIRED)
FINAL = frozenset({SUCCEEDED, FAILED, EXPIRED})
# A retried accept (same idempotency key) within this window is the same invocation.
IDEMPOTENCY_WINDOW_S = 600.0


@dataclasses.dataclass(frozen=True)
class Record:
    id: str
    function: str
    payload: bytes
    state: str = QUEUED
    attempts: int = 0
    # 1 + maximum_retry_attempts, and maximum_event_age_s, as configured at accept.
    max_attempts: int = 3
    max_age_s: float = 21600.0
    retry_delay_s: float = 1.0
    enqueued_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    version: str = ""
    result: bytes | None = None
    error: dict[str, Any] | None = None
    idempotency_key: str | None = None
    # Where the outcome goes (on_success / on_failure, chosen when the event finished), and
    # whether it got there: "pending", "delivered" or "failed" ("" without a destination).
    destination: str = ""
    delivery: str = ""
    delivery_error: str = ""
    # The accepting call's span (a W3C traceparent; "" for none): each attempt continues it.
    trace: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The API's view (no payload: it can be large, and the caller has it)."""
        return {
            "invocationId": self.id,
            "function": self.function,
            "state": self.state,
            "attempts": self.attempts,
            "maxAttempts": self.max_attempts,
            "enqueuedAt": self.enqueued_at,
            "updatedAt": self.updated_at,
            "finishedAt": self.finished_at,
            "executedVersion": self.version or None,
            "result": decoded(self.result),
            "error": self.error,
            "destination": self.destination or None,
            "delivery": self.delivery or None,
            "deliveryError": self.delivery_error or None,
        }


def decoded(body: bytes | None) -> Any:
    """A stored payload or result as JSON, else as text (None when there is none)."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


class Queue(abc.ABC):
    """What every backend does, each call durable when it returns."""

    @abc.abstractmethod
    async def put(self, record: Record) -> Record:
        """Store a new event; with an idempotency key seen for the function within the window,
        store nothing and return the record that key made."""

    async def lease(self, now: float, visibility_s: float, exclude: set[str]) -> Record | None:
        """The oldest visible event of a function not in ``exclude``, now running (its attempt
        counted, hidden from other leases until ``now + visibility_s``), or None."""
        leased = await self.lease_many(now, visibility_s, lambda f: int(f not in exclude), 1)
        return leased[0] if leased else None

    @abc.abstractmethod
    async def lease_many(
        self, now: float, visibility_s: float, room: Callable[[str], int], limit: int
    ) -> list[Record]:
        """Up to ``limit`` events at once, at most ``room(function)`` of each function, oldest
        first, each leased as ``lease`` leases one. A lease not ended (acked, retried, released,
        ended) within its visibility timeout is leased again, its attempt counted."""

    @abc.abstractmethod
    async def next_visible(self, now: float, exclude: set[str]) -> float | None:
        """When the next event (of a function not in ``exclude``) becomes visible."""

    @abc.abstractmethod
    async def ack(
        self, id: str, now: float, result: bytes, version: str, destination: str = ""
    ) -> None:
        """Succeeded; with a destination, its delivery is pending from the same commit."""

    @abc.abstractmethod
    async def retry(self, id: str, now: float, delay_s: float, error: dict[str, Any]) -> None:
        """Back to queued, visible after ``delay_s``, with the attempt's error kept."""

    @abc.abstractmethod
    async def release(self, id: str, now: float, delay_s: float) -> None:
        """Back to queued without counting the attempt (no capacity: backpressure)."""

    @abc.abstractmethod
    async def end(
        self, id: str, now: float, state: str, error: dict[str, Any], destination: str = ""
    ) -> None:
        """Failed or expired: a dead letter, kept with its error (and a pending delivery)."""

    @abc.abstractmethod
    async def delivered(self, id: str, ok: bool, error: str = "") -> None:
        """The outcome reached its destination (or, ``ok`` false, gave up)."""

    @abc.abstractmethod
    async def pending_deliveries(self) -> list[Record]:
        """Outcomes not yet delivered (after a crash: delivered again, at least once)."""

    @abc.abstractmethod
    async def recover(self, now: float) -> int:
        """After a crash: every running event is queued again now (its attempt counted)."""

    @abc.abstractmethod
    async def get(self, id: str) -> Record | None: ...

    @abc.abstractmethod
    async def list(self, function: str | None, state: str | None, limit: int) -> list[Record]:
        """Newest first."""

    @abc.abstractmethod
    async def depth(self) -> dict[str, tuple[int, float]]:
        """Per function: events not yet finished, and the enqueue time of the oldest."""

    async def close(self) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class Decision:
    action: str  # "retry", "failed" or "expired"
    delay_s: float = 0.0


def after_failure(record: Record, now: float, rng: random.Random | None = None) -> Decision:
    """What follows a failed attempt (``record.attempts`` already counts it)."""
    if now - record.enqueued_at >= record.max_age_s:
        return Decision(EXPIRED)
    if record.attempts >= record.max_attempts:
        return Decision(FAILED)
    delay = backoff(record.attempts, record.retry_delay_s, rng)
    if now + delay - record.enqueued_at >= record.max_age_s:
        return Decision(EXPIRED)
    return Decision("retry", delay)


def backoff(attempt: int, base_s: float, rng: random.Random | None = None) -> float:
    """base, 2 x base, 4 x base... after attempts 1, 2, 3, each within +-20% (jitter)."""
    jitter = (rng or random).uniform(0.8, 1.2)
    return base_s * (2 ** max(0, attempt - 1)) * jitter
