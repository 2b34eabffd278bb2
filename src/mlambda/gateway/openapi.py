"""The OpenAPI document served at /openapi.json."""

from __future__ import annotations

from typing import Any

from mlambda import __version__

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    texts = {
        400: "Bad request (not JSON, invalid mlambda.toml...)",
        401: "Missing or invalid API key",
        404: "No such function",
        413: "Payload over the limit",
        429: "Throttled: no instance became free in time",
        502: "The function failed (header X-Mlambda-Function-Error: Unhandled)",
        504: "The function timed out",
    }
    return {str(code): _json(ERROR, texts[code]) for code in codes}


NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}


def document() -> dict[str, Any]:
    any_json: dict[str, Any] = {}
    return {
        "openapi": "3.1.0",
        "info": {"title": "mlambda", "version": __version__},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["errorType", "errorMessage"],
                    "properties": {
                        "errorType": {"type": "string"},
                        "errorMessage": {"type": "string"},
                        "stackTrace": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {"security": [], "responses": {"200": {"description": "Alive"}}}},
            "/metrics": {"get": {"responses": {"200": {"description": "Prometheus text"}}}},
            "/v1/functions": {
                "get": {"responses": {"200": _json({"type": "object"}, "Deployed functions")}}
            },
            "/v1/functions/{name}": {
                "parameters": [NAME],
                "get": {
                    "responses": {"200": _json({"type": "object"}, "The function"), **_errors(404)}
                },
                "put": {
                    "requestBody": {
                        "content": {
                            "application/gzip": {"schema": {"type": "string", "format": "binary"}}
                        }
                    },
                    "responses": {
                        "200": _json({"type": "object"}, "Updated or unchanged"),
                        "201": _json({"type": "object"}, "Created"),
                        **_errors(400, 413),
                    },
                },
                "delete": {
                    "responses": {"200": _json({"type": "object"}, "Removed"), **_errors(404)}
                },
            },
            "/v1/functions/{name}/invoke": {
                "parameters": [
                    NAME,
                    {
                        "name": "proba",
                        "in": "query",
                        "description": "A model function answers with class probabilities",
                        "schema": {"type": "boolean"},
                    },
                ],
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": any_json}}},
                    "responses": {
                        "200": _json(any_json, "The handler's return value"),
                        **_errors(400, 401, 404, 413, 429, 502, 504),
                    },
                },
            },
            "/v1/instances": {
                "get": {
                    "responses": {
                        "200": _json(
                            {"type": "object"},
                            "Zygotes, templates and instances with state, age, RSS and PSS",
                        )
                    }
                }
            },
            "/v1/functions/{name}/logs": {
                "parameters": [
                    NAME,
                    {"name": "tail", "in": "query", "schema": {"type": "integer", "default": 100}},
                    {"name": "follow", "in": "query", "schema": {"type": "boolean"}},
                ],
                "get": {
                    "responses": {"200": {"description": "Log lines (text/plain)"}, **_errors(404)}
                },
            },
            **_inference_protocol(),
            "/fn/{name}/{path}": {
                "parameters": [
                    NAME,
                    {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "get": {
                    "description": "The function as a web endpoint (Lambda function URL, "
                    "payload 2.0); every HTTP method is accepted.",
                    "responses": {"default": {"description": "The handler's HTTP response"}},
                },
            },
        },
    }


def _inference_protocol() -> dict[str, Any]:
    """Open Inference Protocol v2 routes (model functions); errors are {"error": message}."""
    v2_error = _json(
        {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Error",
    )
    version = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
    infer = {
        "post": {
            "description": "Inference request: JSON tensors, or a JSON header of "
            "Inference-Header-Content-Length bytes followed by binary tensor data.",
            "requestBody": {
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                }
            },
            "responses": {
                "200": _json({"type": "object"}, "Inference response (binary data optional)"),
                "default": v2_error,
            },
        }
    }
    metadata = {
        "get": {
            "responses": {
                "200": _json({"type": "object"}, "Inputs and outputs with datatype and shape"),
                "default": v2_error,
            }
        }
    }
    ready = {"get": {"responses": {"200": _json({"type": "object"}, "Ready"), "default": v2_error}}}
    open_route = {"get": {"security": [], "responses": {"200": {"description": "Live / ready"}}}}
    return {
        "/v2": {"get": {"responses": {"200": _json({"type": "object"}, "Server metadata")}}},
        "/v2/health/live": open_route,
        "/v2/health/ready": open_route,
        "/v2/models/{name}": {"parameters": [NAME], **metadata},
        "/v2/models/{name}/ready": {"parameters": [NAME], **ready},
        "/v2/models/{name}/infer": {"parameters": [NAME], **infer},
        "/v2/models/{name}/versions/{version}": {"parameters": [NAME, version], **metadata},
        "/v2/models/{name}/versions/{version}/ready": {"parameters": [NAME, version], **ready},
        "/v2/models/{name}/versions/{version}/infer": {"parameters": [NAME, version], **infer},
    }
