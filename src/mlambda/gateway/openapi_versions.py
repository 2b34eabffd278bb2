"""The OpenAPI document's versions, aliases and concurrency routes."""

from __future__ import annotations

from typing import Any

from mlambda.gateway.openapi import NAME, OBJECT, _errors, _json, _param

FN = "/v1/functions/{name}"
ALIAS = _param("alias", type="string", pattern="^[A-Za-z0-9_-]{1,128}$")
VERSION = _param("version", type="string", pattern="^[0-9]{1,10}$")
TEXT = {"type": "string", "maxLength": 256}
PUBLISH = {
    "type": "object",
    "properties": {
        "description": TEXT,
        "codeSha256": {"type": "string"},
        "revisionId": {"type": "string"},
    },
}
ROUTING = {
    "type": "object",
    "required": ["version"],
    "properties": {
        "version": {"type": "string", "description": "$LATEST or a published version"},
        "weights": {
            "type": "object",
            "description": "one more version and its share of calls in [0, 1)",
            "additionalProperties": {"type": "number"},
        },
        "description": TEXT,
        "revisionId": {"type": "string"},
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _list(key: str, description: str) -> dict[str, Any]:
    body = {"type": "object", "properties": {key: {"type": "array"}}}
    return {"get": {"responses": {"200": _json(body, description), **_errors(404)}}}


def version_paths() -> dict[str, Any]:
    return {
        f"{FN}/versions": {
            "parameters": [NAME],
            **_list("versions", "$LATEST, then the published versions in order"),
            "post": {
                "requestBody": _body(PUBLISH),
                "responses": {
                    "201": _json(OBJECT, "Published: $LATEST frozen as the next version"),
                    "200": _json(OBJECT, "Nothing changed since the last version: that one"),
                    **_errors(400, 404, 412, 413),
                },
            },
        },
        f"{FN}/versions/{{version}}": {
            "parameters": [NAME, VERSION],
            "delete": {"responses": {"200": _json(OBJECT, "Deleted"), **_errors(404, 409)}},
        },
        f"{FN}/aliases": {"parameters": [NAME], **_list("aliases", "The function's aliases")},
        f"{FN}/aliases/{{alias}}": {
            "parameters": [NAME, ALIAS],
            "get": {"responses": {"200": _json(OBJECT, "The alias"), **_errors(404)}},
            "put": {
                "requestBody": _body(ROUTING),
                "responses": {
                    "200": _json(OBJECT, "Moved"),
                    "201": _json(OBJECT, "Created"),
                    **_errors(400, 404, 412, 413),
                },
            },
            "delete": {"responses": {"204": {"description": "Deleted"}, **_errors(404)}},
        },
        f"{FN}/concurrency": {
            "parameters": [NAME],
            "get": {
                "responses": {"200": _json(OBJECT, "Reserved and provisioned"), **_errors(404)}
            },
            "put": {
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["reserved"],
                        "properties": {"reserved": {"type": ["integer", "null"], "minimum": 0}},
                    }
                ),
                "responses": {"200": _json(OBJECT, "Set"), **_errors(400, 404, 413)},
            },
        },
        f"{FN}/provisioned/{{qualifier}}": {
            "parameters": [
                NAME,
                _param("qualifier", type="string", pattern="^[A-Za-z0-9_-]{1,128}$"),
            ],
            "put": {
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["requested"],
                        "properties": {"requested": {"type": "integer", "minimum": 1}},
                    }
                ),
                "responses": {"200": _json(OBJECT, "Set"), **_errors(400, 404, 413)},
            },
            "delete": {"responses": {"204": {"description": "Deleted"}, **_errors(400, 404)}},
        },
        f"{FN}/aliases/{{alias}}/rollback": {
            "parameters": [NAME, ALIAS],
            "post": {
                "responses": {
                    "200": _json(OBJECT, "The alias routes as it did before its last change"),
                    **_errors(404, 409),
                }
            },
        },
    }
