"""What a trigger does after a batch, by table: a queue's ack / retry / dead letter, a stream's
checkpoint, bisect, retries and record age, and how many batches a backlog gets."""

from __future__ import annotations

import pytest

from mlambda.events.triggers.config import parse_trigger
from mlambda.events.triggers.outcomes import (
    QueueOutcome,
    StreamStep,
    after_stream_batch,
    expired,
    queue_outcome,
    wanted_batches,
)

IDS = ("a", "b", "c")


@pytest.mark.parametrize(
    ("counts", "failed", "limit", "outcome"),
    [
        ((1, 1, 1), [], None, QueueOutcome(ack=IDS)),
        ((1, 1, 1), ["b"], None, QueueOutcome(ack=("a", "c"), retry=("b",))),
        ((1, 1, 1), None, None, QueueOutcome(retry=IDS)),  # the whole batch failed
        ((5, 1, 4), ["a", "c"], 5, QueueOutcome(ack=("b",), retry=("c",), dead_letter=("a",))),
        ((5, 6, 1), None, 5, QueueOutcome(retry=("c",), dead_letter=("a", "b"))),
        ((9, 9, 9), [], 5, QueueOutcome(ack=IDS)),  # succeeding late still counts
        ((50, 50, 50), None, None, QueueOutcome(retry=IDS)),  # no dead letter: never dropped
    ],
)
def test_a_queue_batch_settles_each_message(counts, failed, limit, outcome):
    assert queue_outcome(IDS, counts, failed, limit) == outcome


BISECT = {"bisect_batch_on_function_error": True}


def _stream(**settings: object):
    spec, _ = parse_trigger({"type": "stream", "source": "redis://h?stream=s", **settings}, "t")
    return spec


@pytest.mark.parametrize(
    ("settings", "size", "attempts", "resume_at", "error", "step"),
    [
        ({}, 10, 0, None, False, StreamStep(done=10)),
        # A partial failure: past what succeeded, the rest again, one retry spent.
        ({}, 10, 0, 4, False, StreamStep(done=4, next_size=6, attempts=1)),
        ({"maximum_retry_attempts": 2}, 10, 2, 4, False, StreamStep(done=4, give_up=6)),
        # A whole-batch error, no bisect: the batch again until the retries are spent.
        (
            {"maximum_retry_attempts": 3}, 10, 0, None, True,
            StreamStep(done=0, next_size=10, attempts=1),
        ),
        ({"maximum_retry_attempts": 3}, 10, 3, None, True, StreamStep(done=0, give_up=10)),
        ({"maximum_retry_attempts": 0}, 10, 0, None, True, StreamStep(done=0, give_up=10)),
        # -1: retried until the records are too old (expired() gives them up).
        ({}, 10, 500, None, True, StreamStep(done=0, next_size=10, attempts=501)),
        # Bisect: halves, costing no retry, down to the one bad record, which then retries.
        (BISECT, 10, 0, None, True, StreamStep(done=0, next_size=5)),
        (BISECT, 5, 1, None, True, StreamStep(done=0, next_size=3, attempts=1)),
        (
            {"bisect_batch_on_function_error": True, "maximum_retry_attempts": 1},
            1, 0, None, True, StreamStep(done=0, next_size=1, attempts=1),
        ),
        (
            {"bisect_batch_on_function_error": True, "maximum_retry_attempts": 1},
            1, 1, None, True, StreamStep(done=0, give_up=1),
        ),
        # With bisect on, a partial failure still resumes at the failed record.
        (BISECT, 10, 0, 7, False, StreamStep(done=7, next_size=3, attempts=1)),
    ],
)  # fmt: skip
def test_a_stream_batch_moves_the_checkpoint(settings, size, attempts, resume_at, error, step):
    assert after_stream_batch(_stream(**settings), size, attempts, resume_at, error) == step


def test_bisect_isolates_a_poison_record_and_everything_else_is_processed():
    """Drive the decisions over a partition with one bad record: every other record succeeds
    exactly once in order, the bad one goes to on_failure after its retries."""
    spec = _stream(bisect_batch_on_function_error=True, maximum_retry_attempts=2, batch_size=8)
    records, bad = list(range(20)), 13
    checkpoint, attempts, next_size = 0, 0, None
    processed, given_up = [], []
    for _ in range(200):
        if checkpoint == len(records):
            break
        batch = records[checkpoint : checkpoint + (next_size or spec.size)]
        error = bad in batch
        if not error:
            processed.extend(batch)
        step = after_stream_batch(spec, len(batch), attempts, None, error)
        given_up.extend(batch[step.done : step.done + step.give_up])
        checkpoint += step.done + step.give_up
        attempts, next_size = step.attempts, step.next_size
    assert processed == [r for r in records if r != bad]
    assert given_up == [bad]


@pytest.mark.parametrize(
    ("arrivals", "now", "age", "count"),
    [
        ((0, 10, 20), 100, -1, 0),
        ((0, 10, 20), 100, 60, 3),
        ((0, 50, 90), 100, 60, 1),
        ((50, 0, 90), 100, 60, 0),  # only from the head: order is kept
        ((), 100, 60, 0),
        ((40,), 100, 60, 0),  # exactly the limit is not older than it
    ],
)
def test_records_too_old_are_given_up_from_the_head(arrivals, now, age, count):
    assert expired(arrivals, now, age) == count


@pytest.mark.parametrize(
    ("backlog", "batch", "most", "batches"),
    [(0, 10, 4, 1), (1, 10, 4, 1), (10, 10, 4, 1), (11, 10, 4, 2), (1000, 10, 4, 4), (5, 1, 8, 5)],
)
def test_a_backlog_gets_batches_up_to_the_limit(backlog, batch, most, batches):
    assert wanted_batches(backlog, batch, most) == batches
