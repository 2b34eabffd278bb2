"""The OpenAPI document's trigger routes (gateway/triggers.py)."""

from __future__ import annotations

from typing import Any

from mlambda.events.triggers.config import (
    CATCH_UP,
    OBJECT_EVENTS,
    OBJECT_MODES,
    STARTING_POSITIONS,
    TYPES,
)
from mlambda.gateway.openapi import AWS_ERROR, NAME, OBJECT, _errors, _json, _param

SETTINGS = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": list(TYPES)},
        "source": {
            "type": "string",
            "description": "amqp://, redis://, nats://, mqtt://, mlambda:// (queue, stream); "
            "s3://, file:// (object)",
        },
        "enabled": {"type": "boolean"},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 10000},
        "max_batching_window_s": {"type": "number", "minimum": 0, "maximum": 300},
        "report_batch_item_failures": {"type": "boolean"},
        "max_receive_count": {"type": "integer", "minimum": 1, "maximum": 1000},
        "dead_letter": {"type": "string"},
        "max_concurrency": {"type": "integer", "minimum": 1, "maximum": 1000},
        "starting_position": {"type": "string", "enum": list(STARTING_POSITIONS)},
        "starting_position_timestamp": {"type": "number"},
        "parallelization_factor": {"type": "integer", "minimum": 1, "maximum": 10},
        "bisect_batch_on_function_error": {"type": "boolean"},
        "maximum_retry_attempts": {"type": "integer", "minimum": -1, "maximum": 10000},
        "maximum_record_age_s": {"type": "integer", "minimum": -1, "maximum": 604800},
        "on_failure": {"type": "string"},
        "suffix": {"type": "string"},
        "events": {
            "type": "array",
            "items": {"type": "string", "enum": list(OBJECT_EVENTS)},
            "minItems": 1,
        },
        "mode": {"type": "string", "enum": list(OBJECT_MODES)},
        "endpoint_url": {"type": "string"},
        "region": {"type": "string"},
        "access_key_id": {"type": "string"},
        "secret_access_key": {"type": "string"},
        "poll_interval_s": {"type": "number", "minimum": 0.1, "maximum": 3600},
        "schedule": {"type": "string", "description": "rate(5 minutes), cron(0 2 * * ? *)"},
        "timezone": {"type": "string"},
        "input": {},
        "catch_up": {"type": "string", "enum": list(CATCH_UP)},
        "pattern": {
            "type": ["object", "string"],
            "description": "An EventBridge event pattern, or its JSON text",
        },
    },
    "additionalProperties": False,
}
TRIGGER = {
    "type": "object",
    "required": ["id", "function", "origin", "type", "enabled", "status"],
    "properties": {"status": OBJECT},
    "description": "A trigger's settings (its source's password shown as ***) and its state",
}
LISTING = {"type": "object", "properties": {"triggers": {"type": "array", "items": TRIGGER}}}
ID = _param("id", type="string")


SQS_ERROR = {
    "type": "object",
    "required": ["__type", "message"],
    "properties": {"__type": {"type": "string"}, "message": {"type": "string"}},
}


def sqs_paths() -> dict[str, Any]:
    """The SQS JSON protocol on the platform's queues (gateway/sqs.py)."""
    from mlambda.gateway.events import CONTENT_TYPE as EVENTS_TYPE
    from mlambda.gateway.sqs import CONTENT_TYPE, OPERATIONS, TARGET

    answer = {"schema": OBJECT}
    refusal = {"schema": SQS_ERROR}
    responses = _errors(401, 403, 413, schema=AWS_ERROR)
    for code, text in (
        ("400", "Refused, as SQS refuses it"),
        ("403", "The key does not cover the queue"),
        ("413", "Over 1 MiB"),
    ):
        responses[code] = {
            "description": text,
            "content": {
                CONTENT_TYPE: refusal,
                EVENTS_TYPE: refusal,
                **responses.get(code, {}).get("content", {}),
            },
        }
    return {
        "/": {
            "post": {
                "description": "SQS's JSON protocol: "
                + ", ".join(OPERATIONS)
                + "; EventBridge's PutEvents (X-Amz-Target: AWSEvents.PutEvents)",
                "parameters": [
                    _param(
                        "X-Amz-Target",
                        "header",
                        type="string",
                        enum=[TARGET + name for name in OPERATIONS] + ["AWSEvents.PutEvents"],
                    )
                ],
                "requestBody": {"content": {CONTENT_TYPE: {"schema": OBJECT}}},
                "responses": {
                    "200": {
                        "description": "The operation's answer",
                        "content": {CONTENT_TYPE: answer, EVENTS_TYPE: answer},
                    },
                    **responses,
                },
            }
        }
    }


def trigger_paths() -> dict[str, Any]:
    def switch(what: str) -> dict[str, Any]:
        return {
            "parameters": [ID],
            "post": {"responses": {"200": _json(TRIGGER, what), **_errors(403, 404)}},
        }

    return {
        "/v1/functions/{name}/triggers": {
            "parameters": [NAME],
            "get": {
                "responses": {"200": _json(LISTING, "The function's triggers"), **_errors(404)}
            },
            "post": {
                "description": "Feed the function from a queue, a stream, a bucket or folder, "
                "a schedule or the event bus",
                "requestBody": {"content": {"application/json": {"schema": SETTINGS}}},
                "responses": {"201": _json(TRIGGER, "Added"), **_errors(400, 404, 413)},
            },
        },
        "/v1/triggers/{id}": {
            "parameters": [ID],
            "get": {"responses": {"200": _json(TRIGGER, "The trigger"), **_errors(403, 404)}},
            "delete": {
                "responses": {
                    "204": {"description": "Deleted"},
                    **_errors(403, 404, 409),
                }
            },
        },
        "/v1/triggers/{id}/enable": switch("Enabled: consuming"),
        "/v1/triggers/{id}/disable": switch("Disabled: messages wait at the broker"),
    }


ENTRY = {
    "type": "object",
    "properties": {
        "Source": {"type": "string"},
        "DetailType": {"type": "string"},
        "Detail": {"type": "string", "description": "A JSON object, as text"},
        "Time": {"type": ["string", "number"]},
        "Resources": {"type": "array", "items": {"type": "string"}},
        "EventBusName": {"type": "string"},
    },
}
PUT_EVENTS = {
    "type": "object",
    "required": ["Entries"],
    "properties": {"Entries": {"type": "array", "items": ENTRY, "minItems": 1, "maxItems": 10}},
}
PUT_ANSWER = {
    "type": "object",
    "required": ["FailedEntryCount", "Entries"],
    "properties": {
        "FailedEntryCount": {"type": "integer"},
        "Entries": {"type": "array", "items": OBJECT},
    },
}
NOTIFIED = {
    "type": "object",
    "required": ["records", "invocations"],
    "properties": {"records": {"type": "integer"}, "invocations": {"type": "array"}},
}


def event_paths() -> dict[str, Any]:
    """The event bus and S3 notifications (gateway/events.py)."""
    return {
        "/v1/events": {
            "post": {
                "description": "PutEvents: each entry matched against rule triggers and queued",
                "requestBody": {"content": {"application/json": {"schema": PUT_EVENTS}}},
                "responses": {
                    "200": _json(PUT_ANSWER, "Each entry's EventId or error"),
                    **_errors(400, 413),
                },
            }
        },
        "/v1/events/s3": {
            "post": {
                "description": "An S3 event notification, for object triggers with mode = notify",
                "requestBody": {"content": {"application/json": {"schema": OBJECT}}},
                "responses": {
                    "200": _json(NOTIFIED, "The invocations queued"),
                    **_errors(400, 413),
                },
            }
        },
    }
