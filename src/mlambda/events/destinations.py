"""Destinations: an event's outcome, as Lambda's destination record, delivered to another
function (as an asynchronous event), sent to a platform queue, or POSTed to a webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mlambda.events.queue import EXPIRED, SUCCEEDED, Record, decoded
from mlambda.runtime.context import function_arn

QUEUE = "mlambda://"
CONDITIONS = {SUCCEEDED: "Success", EXPIRED: "EventAgeExceeded"}
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_TRIES = 3


def destination_record(record: Record, region: str) -> dict[str, Any]:
    """Lambda's shape (version 1.0): what was asked, what came of it (pure)."""
    succeeded = record.state == SUCCEEDED
    response: Any = decoded(record.result) if succeeded else record.error
    context: dict[str, Any] = {
        "statusCode": 200,
        "executedVersion": record.version or "$LATEST",
    }
    if not succeeded:
        context["functionError"] = "Unhandled"
    stamp = record.finished_at or record.updated_at
    return {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp))
        + f".{int(stamp * 1000) % 1000:03d}Z",
        "requestContext": {
            "requestId": record.id,
            "functionArn": function_arn(record.function, "$LATEST", region),
            "condition": CONDITIONS.get(record.state, "RetriesExhausted"),
            "approximateInvokeCount": record.attempts,
        },
        "requestPayload": decoded(record.payload),
        "responseContext": context,
        "responsePayload": response,
    }


async def deliver(
    record: Record,
    region: str,
    accept: Callable[[str, bytes], Awaitable[Any]],
    send: Callable[[str, bytes], Awaitable[Any]],
    sleep: Callable[[float], Awaitable[None]],
) -> str:
    """Deliver the record to its destination; "" when it got there, else why not."""
    body = json.dumps(destination_record(record, region)).encode()
    target = record.destination
    for scheme, hand, doing in (("function:", accept, "invoke"), (QUEUE, send, "send to")):
        if target.startswith(scheme):
            try:
                await hand(target.removeprefix(scheme), body)
            except Exception as exc:
                return f"could not {doing} {target}: {exc}"
            return ""
    import httpx  # only webhooks need it; serve starts faster without it

    reason = ""
    for attempt in range(WEBHOOK_TRIES):
        try:
            async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S) as client:
                response = await client.post(
                    target, content=body, headers={"Content-Type": "application/json"}
                )
            if response.is_success:
                return ""
            reason = f"{target} answered {response.status_code}"
        except httpx.HTTPError as exc:
            reason = f"{target}: {type(exc).__name__}: {exc}"
        if attempt + 1 < WEBHOOK_TRIES:
            await sleep(2**attempt)
    return reason
