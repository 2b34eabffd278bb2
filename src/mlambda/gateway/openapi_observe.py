"""The OpenAPI document's observing routes: alarms and a function's metric datapoints."""

from __future__ import annotations

from typing import Any

from mlambda.gateway.openapi import OBJECT, _errors, _json, _param
from mlambda.observe.alarm_rule import COMPARISONS, METRICS, MISSING, STATES

ALARM = _param("alarm", type="string", pattern="^[A-Za-z0-9_.-]{1,64}$")
RULE = {
    "type": "object",
    "required": ["function", "metric", "statistic", "comparison", "threshold"],
    "properties": {
        "name": {"type": "string"},
        "function": {"type": "string", "description": "a function, or * for all of them"},
        "metric": {"type": "string", "enum": list(METRICS)},
        "statistic": {
            "type": "string",
            "description": "Sum, Average, Minimum, Maximum, SampleCount or a percentile: p99",
        },
        "comparison": {"type": "string", "enum": list(COMPARISONS)},
        "threshold": {"type": "number"},
        "period": {"type": "integer", "minimum": 1, "maximum": 86400},
        "evaluation_periods": {"type": "integer", "minimum": 1},
        "datapoints_to_alarm": {"type": "integer", "minimum": 1},
        "treat_missing_data": {"type": "string", "enum": list(MISSING)},
        "webhooks": {"type": "array", "items": {"type": "string"}},
        "webhook_format": {"type": "string", "enum": ["json", "slack"]},
        "notify_function": {"type": "string"},
        "notify_on": {"type": "array", "items": {"type": "string", "enum": list(STATES)}},
    },
}


def observe_paths() -> dict[str, Any]:
    alarm_body = {"required": True, "content": {"application/json": {"schema": RULE}}}
    return {
        "/v1/alarms": {
            "get": {
                "parameters": [_param("state", "query", type="string", enum=list(STATES))],
                "responses": {"200": _json(OBJECT, "Every alarm, with its state"), **_errors()},
            }
        },
        "/v1/alarms/{alarm}": {
            "parameters": [ALARM],
            "get": {
                "responses": {
                    "200": _json(OBJECT, "The alarm, its state and its last changes"),
                    **_errors(404),
                }
            },
            "put": {
                "requestBody": alarm_body,
                "responses": {
                    "200": _json(OBJECT, "The alarm, replaced"),
                    "201": _json(OBJECT, "The alarm, created"),
                    **_errors(400, 413),
                },
            },
            "delete": {"responses": {"204": {"description": "Deleted"}, **_errors(404)}},
        },
        "/v1/functions/{name}/metrics": {
            "parameters": [
                _param("name", type="string", pattern=r"^([A-Za-z0-9_-]{1,64}|\*)$"),
                _param("metric", "query", type="string", enum=list(METRICS)),
                _param("statistic", "query", type="string"),
                _param("period", "query", type="integer", minimum=1, maximum=86400),
                _param("since", "query", type="string", pattern="^[0-9]+[smhd]$"),
            ],
            "get": {
                "responses": {
                    "200": _json(OBJECT, "The metric's datapoints, one per period"),
                    **_errors(400, 404),
                }
            },
        },
    }
