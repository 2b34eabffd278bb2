"""The platform's event bus: ``POST /v1/events`` takes entries in the shape of EventBridge's
PutEvents (Source, DetailType, Detail, Time, Resources), makes each an EventBridge event, and
queues one asynchronous invocation for every rule trigger whose pattern matches it.

Entries are checked one by one, as PutEvents does: a bad entry fails with an error code and a
message in its place in the answer, the others go on. An event is in the asynchronous queue of
every function it matched before its entry is answered with an EventId; an entry that could
not be queued answers ``InternalFailure`` (send it again: the idempotency key of each
invocation, the rule and the event id, makes a retry within the queue's window one
invocation).
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from mlambda.errors import InvalidRequest
from mlambda.events import patterns
from mlambda.events.shapes import bus_event
from mlambda.events.triggers.store import Trigger
from mlambda.runtime.context import ACCOUNT

MAX_ENTRIES = 10  # PutEvents' limit
MAX_ENTRY_BYTES = 256 * 1024
Accept = Callable[..., Awaitable[Any]]


class EntryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def entries_of(body: Any) -> list[Any]:
    """The request's ``Entries`` (1 to 10), or a 400 saying what is wrong."""
    entries = body.get("Entries") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
        raise InvalidRequest(
            f'the body must be {{"Entries": [...]}} with 1 to {MAX_ENTRIES} entries, each '
            "{Source, DetailType, Detail, Time?, Resources?}"
        )
    return entries


def event_of(entry: Any, region: str, now: float) -> dict[str, Any]:
    """Pure: the EventBridge event an entry makes, or EntryError (PutEvents' codes)."""
    if not isinstance(entry, dict):
        raise EntryError("InvalidArgument", "an entry must be an object")
    if len(msgspec.json.encode(entry)) > MAX_ENTRY_BYTES:
        raise EntryError("InvalidArgument", f"an entry may hold {MAX_ENTRY_BYTES} bytes")
    bus = entry.get("EventBusName") or "default"
    if bus not in ("default", f"arn:aws:events:{region}:{ACCOUNT}:event-bus/default"):
        raise EntryError("InvalidArgument", f"no event bus {bus!r}: this platform has 'default'")
    source, detail_type = entry.get("Source"), entry.get("DetailType")
    if not (isinstance(source, str) and source and isinstance(detail_type, str) and detail_type):
        raise EntryError("InvalidArgument", "Source and DetailType are required: non-empty strings")
    resources = entry.get("Resources", [])
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise EntryError("InvalidArgument", "Resources must be a list of strings")
    return bus_event(
        source,
        detail_type,
        _detail(entry.get("Detail")),
        id=str(uuid.uuid4()),
        at=_time(entry.get("Time"), now),
        region=region,
        resources=resources,
    )


def _detail(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = msgspec.json.decode(value)
        except msgspec.DecodeError:
            raise EntryError("MalformedDetail", "Detail is not valid JSON") from None
    if not isinstance(value, dict):
        raise EntryError("MalformedDetail", "Detail must be a JSON object (as a string)")
    return value


def _time(value: Any, now: float) -> float:
    """Time as epoch seconds (what boto3 sends) or ISO 8601 text; absent: now."""
    if value is None:
        return now
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            stamp = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=datetime.UTC)
            return stamp.timestamp()
    raise EntryError("InvalidArgument", f"Time must be epoch seconds or ISO 8601, got {value!r}")


async def put_events(
    body: Any,
    rules: Sequence[Trigger],
    accept: Accept,
    region: str,
    queued: Callable[[Trigger], None] = lambda _: None,
) -> dict[str, Any]:
    """PutEvents: each entry checked, matched against ``rules`` and queued (``queued`` told of
    each rule it was queued for); the answer."""
    answers: list[dict[str, Any]] = []
    for entry in entries_of(body):
        try:
            event = event_of(entry, region, time.time())
            await _route(event, rules, accept, queued)
        except EntryError as exc:
            answers.append({"ErrorCode": exc.code, "ErrorMessage": exc.message})
            continue
        answers.append({"EventId": event["id"]})
    failed = sum(1 for a in answers if "ErrorCode" in a)
    return {"FailedEntryCount": failed, "Entries": answers}


async def _route(
    event: dict[str, Any],
    rules: Sequence[Trigger],
    accept: Accept,
    queued: Callable[[Trigger], None],
) -> None:
    body = msgspec.json.encode(event)
    for rule in rules:
        if rule.spec.pattern is None or not patterns.matches(rule.spec.pattern, event):
            continue
        try:
            await accept(rule.function, body, idempotency_key=f"rule:{rule.id}:{event['id']}")
        except Exception as exc:
            raise EntryError("InternalFailure", f"queueing for {rule.function}: {exc}") from exc
        queued(rule)
