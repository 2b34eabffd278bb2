"""The OpenAPI document's asynchronous-invocation routes: tracking, dead letters, replay, the
platform's queues, and the Lambda API's event invoke config."""

from __future__ import annotations

from typing import Any

from mlambda.events.queue import STATES
from mlambda.gateway.openapi import (
    ACCEPTED,
    ANY_JSON,
    AWS_ERROR,
    NAME,
    OBJECT,
    _errors,
    _json,
    _param,
)

FILTERS = [
    _param("state", "query", type="string", enum=list(STATES)),
    _param("limit", "query", type="integer", minimum=1, maximum=1000, default=100),
]


def _listing(key: str, description: str, *errors: int) -> dict[str, Any]:
    body = {"type": "object", "properties": {key: {"type": "array"}}}
    return {"get": {"responses": {"200": _json(body, description), **_errors(*errors)}}}


def async_paths() -> dict[str, Any]:
    return {
        "/v1/functions/{name}/invocations": {
            "parameters": [NAME, *FILTERS],
            **_listing(
                "invocations", "The function's asynchronous invocations, newest first", 400, 404
            ),
        },
        "/v1/functions/{name}/dead-letters": {
            "parameters": [NAME],
            **_listing(
                "deadLetters", "Failed and expired asynchronous invocations, newest first", 404
            ),
        },
        "/v1/functions/{name}/invocations/{id}/replay": {
            "parameters": [NAME, _param("id", type="string")],
            "post": {
                "responses": {
                    "202": _json(ACCEPTED, "The event runs again, as a new invocation"),
                    **_errors(400, 404),
                }
            },
        },
        "/v1/invocations": {
            "parameters": FILTERS,
            **_listing(
                "invocations", "Every function's asynchronous invocations, newest first", 400
            ),
        },
        "/v1/invocations/{id}": {
            "parameters": [_param("id", type="string")],
            "get": {
                "responses": {
                    "200": _json(OBJECT, "One asynchronous invocation: state, attempts, result"),
                    **_errors(404),
                }
            },
        },
    }


QUEUE = _param("name", type="string", pattern="^[A-Za-z0-9_-]{1,80}$")
MESSAGES = {"type": "object", "properties": {"messages": {"type": "array"}}}
STRING = {"type": "string"}


def queue_paths() -> dict[str, Any]:
    receive = [
        _param("max_messages", "query", type="integer", minimum=1, maximum=10, default=1),
        _param(
            "visibility_timeout_s", "query", type="integer", minimum=0, maximum=43200, default=30
        ),
    ]
    sent = {"type": "object", "required": ["messageId"], "properties": {"messageId": STRING}}
    return {
        "/v1/queues": _listing("queues", "Queues with messages not yet deleted", 503),
        "/v1/queues/{name}/messages": {
            "parameters": [QUEUE],
            "post": {
                "description": "Send a message (the body, kept as sent) to a platform queue",
                "requestBody": {"content": {"application/json": {"schema": ANY_JSON}}},
                "responses": {"201": _json(sent, "Stored"), **_errors(400, 413, 503)},
            },
        },
        "/v1/queues/{name}/messages/receive": {
            "parameters": [QUEUE, *receive],
            "post": {
                "responses": {
                    "200": _json(MESSAGES, "Messages, each hidden for the visibility timeout"),
                    **_errors(400, 503),
                }
            },
        },
        "/v1/queues/{name}/messages/{receipt}": {
            "parameters": [QUEUE, _param("receipt", type="string")],
            "delete": {"responses": {"204": {"description": "Deleted"}, **_errors(400, 404, 503)}},
        },
    }


def _config_operation(method: str, operation: str) -> dict[str, Any]:
    body = {"requestBody": {"content": {"application/json": {"schema": OBJECT}}}}
    answer = (
        {"204": {"description": "Deleted"}}
        if method == "delete"
        else {"200": _json(OBJECT, "FunctionEventInvokeConfig")}
    )
    return {
        "description": f"Lambda's {operation}FunctionEventInvokeConfig: retries, event age and "
        "destinations of asynchronous invocations (over [function.async])",
        **(body if method in ("put", "post") else {}),
        "responses": {**answer, **_errors(400, 404, 413, schema=AWS_ERROR)},
    }


def event_invoke_config_paths() -> dict[str, Any]:
    operations = (("get", "Get"), ("put", "Put"), ("post", "Update"), ("delete", "Delete"))
    return {
        "/2019-09-25/functions/{name}/event-invoke-config": {
            "parameters": [_param("name", type="string"), _param("Qualifier", "query")],
            **{method: _config_operation(method, name) for method, name in operations},
        },
        "/2019-09-25/functions/{name}/event-invoke-config/list": {
            "parameters": [_param("name", type="string")],
            "get": {
                "description": "Lambda's ListFunctionEventInvokeConfigs",
                "responses": {
                    "200": _json(OBJECT, "FunctionEventInvokeConfigs"),
                    **_errors(404, schema=AWS_ERROR),
                },
            },
        },
    }


JOB_SETTINGS = {
    "type": "object",
    "required": ["function", "input", "output"],
    "properties": {
        "function": {"type": "string"},
        "input": {"type": "string", "description": "s3://BUCKET/PREFIX/, a folder or a file"},
        "output": {"type": "string", "description": "s3://BUCKET/PREFIX/ or a folder"},
        "per": {"type": "string", "enum": ["object", "line"]},
        "rows_per_call": {"type": "integer", "minimum": 1, "maximum": 10000},
        "concurrency": {"type": "integer", "minimum": 1, "maximum": 1000},
        "endpoint_url": {"type": "string"},
        "region": {"type": "string"},
    },
    "additionalProperties": False,
}
JOB = {
    "type": "object",
    "required": ["id", "function", "state", "items", "done", "failed", "pending"],
    "description": "A batch job's settings, state and progress",
}
JOB_ID = _param("id", type="string")


def job_paths() -> dict[str, Any]:
    """Batch jobs (gateway/jobs.py)."""
    from mlambda.events.jobs import JOB_STATES

    states = [
        _param("state", "query", type="string", enum=list(JOB_STATES)),
        _param("limit", "query", type="integer", minimum=1, maximum=1000, default=100),
    ]
    return {
        "/v1/jobs": {
            "get": {
                "parameters": states,
                "responses": {"200": _json(OBJECT, "Jobs, newest first"), **_errors(400)},
            },
            "post": {
                "description": "Run a function over a bucket's prefix, a folder or a file",
                "requestBody": {"content": {"application/json": {"schema": JOB_SETTINGS}}},
                "responses": {"201": _json(JOB, "Planned and started"), **_errors(400, 404, 413)},
            },
        },
        "/v1/jobs/{id}": {
            "parameters": [JOB_ID],
            "get": {"responses": {"200": _json(JOB, "The job"), **_errors(404)}},
        },
        "/v1/jobs/{id}/cancel": {
            "parameters": [JOB_ID],
            "post": {"responses": {"200": _json(JOB, "Cancelled"), **_errors(404, 409)}},
        },
    }


def cost_paths() -> dict[str, Any]:
    """What functions used and what it costs (gateway/cost.py)."""
    return {
        "/v1/cost": {
            "get": {
                "parameters": [
                    _param("since", "query", type="string", pattern="^[0-9]+[mhd]$", default="7d"),
                    _param("by", "query", type="string", enum=["function", "version", "day"]),
                ],
                "responses": {
                    "200": _json(OBJECT, "Usage priced as Lambda bills it and here"),
                    **_errors(400),
                },
            }
        }
    }
