"""The OpenAPI document's trigger routes (gateway/triggers.py)."""

from __future__ import annotations

from typing import Any

from mlambda.events.triggers.config import STARTING_POSITIONS
from mlambda.gateway.openapi import AWS_ERROR, NAME, OBJECT, _errors, _json, _param

SETTINGS = {
    "type": "object",
    "required": ["type", "source"],
    "properties": {
        "type": {"type": "string", "enum": ["queue", "stream"]},
        "source": {
            "type": "string",
            "description": "amqp://, redis://, nats://, mqtt://, mlambda://",
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
    },
    "additionalProperties": False,
}
TRIGGER = {
    "type": "object",
    "required": ["id", "function", "origin", "type", "source", "enabled", "status"],
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
            "content": {CONTENT_TYPE: refusal, **responses.get(code, {}).get("content", {})},
        }
    return {
        "/": {
            "post": {
                "description": "SQS's JSON protocol: " + ", ".join(OPERATIONS),
                "parameters": [
                    _param(
                        "X-Amz-Target",
                        "header",
                        type="string",
                        enum=[TARGET + name for name in OPERATIONS],
                    )
                ],
                "requestBody": {"content": {CONTENT_TYPE: {"schema": OBJECT}}},
                "responses": {
                    "200": {
                        "description": "The operation's answer",
                        "content": {CONTENT_TYPE: answer},
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
                "description": "Feed the function from a queue or a stream",
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
