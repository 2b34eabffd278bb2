"""What happens after a trigger's batch ran: which messages are done, retried or dead-lettered
(a queue), and where a partition's stream goes on from (a stream). Pure: the consumers do the
I/O these decisions call for.

A queue (SQS's rules): a message the handler did not fail is acknowledged; a failed one is
delivered again, until it has been delivered ``receive_limit`` times: then it goes to the dead
letter (and is acknowledged at the broker once it is there).

A stream (Kinesis's rules, per partition, in order): the checkpoint moves past what succeeded.
A batch the handler failed as a whole is split in two with ``bisect_batch_on_function_error``
(splitting costs no retry: it isolates the bad record), else tried again; a retry counts
against ``maximum_retry_attempts``, and once they are spent the records go to ``on_failure``
and the checkpoint moves past them. A partial failure retries from the first failed record.
Records older than ``maximum_record_age_s`` are given up before they are run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from mlambda.events.triggers.config import TriggerSpec


@dataclasses.dataclass(frozen=True)
class QueueOutcome:
    ack: tuple[str, ...] = ()  # done: acknowledge at the broker
    retry: tuple[str, ...] = ()  # deliver again
    dead_letter: tuple[str, ...] = ()  # to the dead letter, then acknowledge


def queue_outcome(
    ids: Sequence[str],
    receive_counts: Sequence[int],
    failed: Sequence[str] | None,
    receive_limit: int | None,
) -> QueueOutcome:
    """``failed``: the ids the handler failed (``None``: the whole batch failed, an error)."""
    bad = set(ids) if failed is None else set(failed)
    ack, retry, dead = [], [], []
    for identifier, count in zip(ids, receive_counts, strict=True):
        if identifier not in bad:
            ack.append(identifier)
        elif receive_limit is not None and count >= receive_limit:
            dead.append(identifier)
        else:
            retry.append(identifier)
    return QueueOutcome(tuple(ack), tuple(retry), tuple(dead))


@dataclasses.dataclass(frozen=True)
class StreamStep:
    """After a stream batch of ``n`` records from the checkpoint: ``done`` records are finished
    (the checkpoint moves past them), then ``give_up`` more go to on_failure (and the
    checkpoint past them too); the next batch holds at most ``next_size`` records (None: the
    trigger's batch size) and has had ``attempts`` retries."""

    done: int
    give_up: int = 0
    next_size: int | None = None
    attempts: int = 0


def after_stream_batch(
    spec: TriggerSpec, size: int, attempts: int, resume_at: int | None, error: bool
) -> StreamStep:
    """``size`` records ran (``attempts`` retries so far); ``error``: the handler failed the
    whole batch; else ``resume_at`` is the first record to run again (None: all succeeded)."""
    if not error and resume_at is None:
        return StreamStep(done=size)
    start = 0 if error else resume_at or 0
    left = size - start
    if error and spec.bisect_batch_on_function_error and size > 1:
        return StreamStep(done=0, next_size=math.ceil(size / 2), attempts=attempts)
    limit = spec.maximum_retry_attempts
    if limit != -1 and attempts >= limit:
        return StreamStep(done=start, give_up=left)
    return StreamStep(done=start, next_size=left, attempts=attempts + 1)


def expired(arrivals: Sequence[float], now: float, maximum_record_age_s: int) -> int:
    """How many records at the head of a partition are older than the limit (-1: none)."""
    if maximum_record_age_s == -1:
        return 0
    count = 0
    for arrived in arrivals:
        if now - arrived <= maximum_record_age_s:
            break
        count += 1
    return count


def wanted_batches(backlog: int, batch_size: int, max_concurrency: int) -> int:
    """Concurrent batches a queue trigger runs for this backlog: enough to drain it a batch
    each, at least one poller, at most ``max_concurrency``."""
    return max(1, min(max_concurrency, math.ceil(backlog / batch_size)))
