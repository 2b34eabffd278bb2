"""S3 event notifications posted to ``POST /v1/events/s3``: the JSON S3-compatible stores send
(``{"Records": [...]}``; MinIO's webhook target adds ``EventName`` and ``Key`` and writes
``s3:ObjectCreated:Put``). Each record becomes one asynchronous invocation for every object
trigger with ``mode = "notify"`` whose bucket, prefix, suffix and event kinds take it; the
function receives S3's record as Lambda does, whatever store sent it.

The answer comes once every invocation is in the asynchronous queue; a store that gets no
answer sends again, and the idempotency key (the trigger, the object and the record's
sequencer) makes that one invocation.
"""

from __future__ import annotations

import datetime
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from mlambda.errors import InvalidRequest
from mlambda.events.shapes import ObjectEvent
from mlambda.events.triggers.objects import Accept, payload, wanted
from mlambda.events.triggers.store import Trigger

MAX_RECORDS = 1000


def object_events(body: Any) -> list[ObjectEvent]:
    """Pure: the events a notification names ([] for S3's test event), or a 400."""
    if isinstance(body, dict) and str(body.get("Event", "")).endswith("TestEvent"):
        return []
    records = body.get("Records") if isinstance(body, dict) else None
    if not isinstance(records, list) or len(records) > MAX_RECORDS:
        raise InvalidRequest(
            f'an S3 event notification is {{"Records": [...]}} with at most {MAX_RECORDS} '
            "records, as S3-compatible stores send it"
        )
    return [_event(record, i) for i, record in enumerate(records)]


def _event(record: Any, index: int) -> ObjectEvent:
    where = f"Records[{index}]"
    try:
        s3 = record["s3"]
        name = str(record["eventName"]).removeprefix("s3:")
        bucket = str(s3["bucket"]["name"])
        obj = s3["object"]
        key = urllib.parse.unquote_plus(str(obj["key"]))
    except (KeyError, TypeError):
        raise InvalidRequest(
            f"{where} must hold eventName, s3.bucket.name and s3.object.key"
        ) from None
    if not name.startswith(("ObjectCreated:", "ObjectRemoved:")):
        raise InvalidRequest(
            f"{where}.eventName {name!r} is not an ObjectCreated or ObjectRemoved event"
        )
    size = obj.get("size")
    return ObjectEvent(
        name,
        bucket,
        key,
        size if isinstance(size, int) else None,
        str(obj.get("eTag") or obj.get("etag") or "").strip('"'),
        str(obj.get("sequencer") or ""),
        _when(record.get("eventTime")),
    )


def _when(text: Any) -> float:
    if isinstance(text, str):
        try:
            return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()


async def notify(
    body: Any,
    triggers: Sequence[Trigger],
    accept: Accept,
    region: str,
    queued: Callable[[Trigger], None] = lambda _: None,
) -> dict[str, Any]:
    """Queue the notification's records for the triggers that take them; what was queued."""
    events = object_events(body)
    invocations: list[dict[str, str]] = []
    for event in events:
        for trigger in triggers:
            if trigger.source.broker != "s3" or not wanted(trigger, event):
                continue
            asked = time.time()
            record = await accept(
                trigger.function,
                payload(trigger, event, region),
                # A notification sent again has the same sequencer; a new upload a new one.
                idempotency_key=f"s3:{trigger.id}:{event.bucket}/{event.key}:"
                f"{event.name}:{event.sequencer or event.etag}",
            )
            if record.enqueued_at >= asked:  # new: not the same notification sent again
                queued(trigger)
            invocations.append(
                {"trigger": trigger.id, "function": trigger.function, "invocation": record.id}
            )
    return {"records": len(events), "invocations": invocations}
