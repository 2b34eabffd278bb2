"""The OpenAPI document served at /openapi.json: every route, every status it can answer, and
the error bodies the server really sends (checked by schemathesis in the test suite)."""

from __future__ import annotations

from typing import Any

from mlambda import __version__

ERROR = {"$ref": "#/components/schemas/Error"}
FUNCTION_ERROR = {"$ref": "#/components/schemas/FunctionError"}
AWS_ERROR = {"$ref": "#/components/schemas/AwsError"}
V2_ERROR = {"$ref": "#/components/schemas/V2Error"}
OBJECT: dict[str, Any] = {"type": "object"}
ANY_JSON: dict[str, Any] = {}

TEXTS = {
    400: "Bad request: not JSON, an invalid mlambda.toml or bundle, a bad parameter",
    401: "Missing, invalid, expired or revoked API key",
    403: "The key's scopes do not cover this route (AccessDeniedException)",
    404: "No such function, version, alias, key or route",
    409: "Conflict: an alias still routes to the version, or the alias already exists",
    412: "The RevisionId given no longer matches (PreconditionFailedException)",
    413: "Payload over the limit",
    429: "Throttled: a rate limit (Retry-After says when to come back), no instance free in "
    "time, or too many failed authentications from this address",
    500: "An artifact is corrupted (redeploy to repair)",
    502: "The function failed (header X-Mlambda-Function-Error: Unhandled)",
    503: "The function is being replaced, or a dependency (Redis, NATS) is unreachable",
    504: "The function timed out",
}
# What every route that needs a key may answer before the route itself runs.
GUARDED = (401, 403, 429)
RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds"}}


# What ?mode=async answers (openapi_events.py has the rest of the asynchronous routes).
ACCEPTED = {
    "type": "object",
    "required": ["invocation_id", "state"],
    "properties": {"invocation_id": {"type": "string"}, "state": {"type": "string"}},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int, schema: dict[str, Any] = ERROR) -> dict[str, Any]:
    """The error responses of a route; refusals before the route runs are the native shape,
    except on the Lambda API, which answers as AWS does."""
    responses = {}
    for code in sorted({*codes, *GUARDED}):
        body = schema
        if code in GUARDED:
            body = AWS_ERROR if schema is AWS_ERROR else ERROR
        elif code in (502, 504) and schema is ERROR:
            body = FUNCTION_ERROR
        responses[str(code)] = _json(body, TEXTS[code])
        if code == 429:
            responses[str(code)]["headers"] = RETRY_AFTER
    return responses


def _param(name: str, where: str = "path", **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema or {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    }


NAME = _param("name")


def _schemas() -> dict[str, Any]:
    text, number = {"type": "string"}, {"type": "number"}
    nullable_number = {"type": ["number", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["errorType", "errorMessage"],
            "properties": {"errorType": text, "errorMessage": text},
        },
        "FunctionError": {
            "type": "object",
            "required": ["errorType", "errorMessage"],
            "properties": {
                "errorType": text,
                "errorMessage": text,
                "stackTrace": {"type": "array", "items": text},
                "requestId": text,
            },
        },
        "AwsError": {
            "type": "object",
            "description": "As AWS clients parse it; the type is also in x-amzn-ErrorType",
            "required": ["Type", "message", "errorType", "errorMessage"],
            "properties": {"Type": text, "message": text, "errorType": text, "errorMessage": text},
        },
        "V2Error": {"type": "object", "required": ["error"], "properties": {"error": text}},
        "Function": {
            "type": "object",
            "required": ["name", "version", "digest", "config", "instances"],
            "properties": {"name": text, "version": text, "digest": text, "config": OBJECT},
        },
        "Key": {
            "type": "object",
            "required": ["id", "name", "scopes", "state"],
            "properties": {
                "id": text,
                "name": text,
                "scopes": {"type": "array", "items": text},
                "state": {"enum": ["active", "expired", "revoked"]},
                "createdAt": number,
                "expiresAt": nullable_number,
                "revokedAt": nullable_number,
            },
        },
        "KeyRequest": {
            "type": "object",
            "required": ["name", "scopes"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                "scopes": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "examples": ["invoke:fraud*", "read"]},
                },
                "expires_s": {"type": "number", "exclusiveMinimum": 0},
                "rate_limit": {"type": "number", "exclusiveMinimum": 0},
                "burst": {"type": "number", "minimum": 1},
            },
        },
    }


def _functions() -> dict[str, Any]:
    bundle = {
        "required": True,
        "description": "A bundle: a gzip'd tar with mlambda.toml at its root (mlambda deploy "
        "makes one); members are checked and limited while it is read",
        "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
    }
    function = {"$ref": "#/components/schemas/Function"}
    return {
        "/v1/functions": {
            "get": {
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"functions": {"type": "array"}}},
                        "Deployed functions",
                    ),
                    **_errors(),
                }
            }
        },
        "/v1/functions/{name}": {
            "parameters": [NAME],
            "get": {"responses": {"200": _json(function, "The function"), **_errors(404)}},
            "put": {
                "parameters": [
                    _param("publish", "query", type="boolean", description="publish a version"),
                    _param("alias", "query", type="string", description="point it at the version"),
                    _param("description", "query", type="string", maxLength=256),
                ],
                "requestBody": bundle,
                "responses": {
                    "200": _json(OBJECT, "Updated or unchanged"),
                    "201": _json(OBJECT, "Created"),
                    **_errors(400, 413, 500, 503),
                },
            },
            "delete": {"responses": {"200": _json(OBJECT, "Removed"), **_errors(404)}},
        },
        "/v1/functions/{name}/invoke": {
            "parameters": [
                NAME,
                _param("proba", "query", type="boolean", description="class probabilities"),
                _param("qualifier", "query", type="string", description="a version or an alias"),
                _param(
                    "mode",
                    "query",
                    type="string",
                    enum=["sync", "async"],
                    description="async: 202 once the event is stored; it runs at least once",
                ),
                _param(
                    "Idempotency-Key",
                    "header",
                    type="string",
                    description="with mode=async: a retried accept within 10 minutes is the same",
                ),
            ],
            "post": {
                "requestBody": {"content": {"application/json": {"schema": ANY_JSON}}},
                "responses": {
                    "200": _json(ANY_JSON, "The handler's return value"),
                    "202": _json(ACCEPTED, "Accepted (mode=async)"),
                    **_errors(400, 404, 413, 500, 502, 503, 504),
                },
            },
        },
        "/v1/functions/{name}/logs": {
            "parameters": [
                NAME,
                _param("tail", "query", type="integer", minimum=0, default=100),
                _param("follow", "query", type="boolean"),
                _param("since", "query", type="string", pattern="^[0-9]+[smhd]$"),
                _param("filter", "query", type="string"),
                _param("request_id", "query", type="string"),
                _param("format", "query", type="string", enum=["text", "json"]),
            ],
            "get": {
                "responses": {
                    "200": {
                        "description": "Log lines (format=json: one JSON object a line)",
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(400, 404),
                }
            },
        },
        "/v1/instances": {
            "get": {
                "responses": {
                    "200": _json(OBJECT, "Zygotes, templates and instances with RSS and PSS"),
                    **_errors(),
                }
            }
        },
    }


def _admin() -> dict[str, Any]:
    key = {"$ref": "#/components/schemas/Key"}
    return {
        "/v1/keys": {
            "get": {"responses": {"200": _json(OBJECT, "Keys (never secrets)"), **_errors()}},
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/KeyRequest"}}
                    },
                },
                "responses": {
                    "201": _json(key, "The key, with its token and secret (shown once)"),
                    **_errors(400, 413),
                },
            },
        },
        "/v1/keys/{key}": {
            "parameters": [_param("key", type="string", pattern="^[A-Za-z0-9]{1,32}$")],
            "delete": {"responses": {"200": _json(key, "Revoked"), **_errors(404)}},
        },
        "/v1/audit": {
            "parameters": [
                _param("since", "query", type="number", minimum=0),
                _param("after", "query", type="integer", minimum=0),
                _param("limit", "query", type="integer", minimum=1, maximum=1000),
                _param("action", "query", type="string"),
                _param("verify", "query", type="boolean"),
            ],
            "get": {
                "responses": {
                    "200": _json(OBJECT, "Entries oldest first, or ?verify=1's verdict"),
                    **_errors(400),
                }
            },
        },
        "/v1/master-key/rotate": {
            "post": {
                "responses": {
                    "200": _json(OBJECT, "What was re-wrapped (no key material)"),
                    **_errors(400),
                }
            }
        },
    }


def _lambda() -> dict[str, Any]:
    headers = [
        _param("X-Amz-Invocation-Type", "header", enum=["RequestResponse", "DryRun", "Event"]),
        _param("X-Amz-Log-Type", "header", enum=["None", "Tail"]),
    ]
    return {
        "/2015-03-31/functions/{name}/invocations": {
            "parameters": [_param("name", type="string"), *headers],
            "post": {
                "description": "AWS Lambda's Invoke API (SigV4-signed: boto3, the AWS CLI)",
                "requestBody": {"content": {"application/json": {"schema": ANY_JSON}}},
                "responses": {
                    "200": _json(ANY_JSON, "The result, or the function's error (FunctionError)"),
                    "202": {"description": "Event: stored; it runs at least once"},
                    "204": {"description": "DryRun: the function exists"},
                    **_errors(400, 404, 413, 500, 503, schema=AWS_ERROR),
                },
            },
        },
    }


def _inference_protocol() -> dict[str, Any]:
    """Open Inference Protocol v2 routes (model functions); their errors are {"error": ...}."""
    version = _param("version", type="string", pattern="^[A-Za-z0-9_$.-]{1,32}$")
    errors = _errors(400, 404, 413, 500, 502, 503, 504, schema=V2_ERROR)
    infer = {
        "post": {
            "description": "Inference request: JSON tensors, or a JSON header of "
            "Inference-Header-Content-Length bytes followed by binary tensor data.",
            "requestBody": {
                "content": {
                    "application/json": {"schema": OBJECT},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                }
            },
            "responses": {"200": _json(OBJECT, "Inference response"), **errors},
        }
    }
    metadata = {"get": {"responses": {"200": _json(OBJECT, "Inputs and outputs"), **errors}}}
    ready = {"get": {"responses": {"200": _json(OBJECT, "Ready"), **errors}}}
    open_route = {"get": {"security": [], "responses": {"200": _json(OBJECT, "Live / ready")}}}
    return {
        "/v2": {"get": {"responses": {"200": _json(OBJECT, "Server metadata"), **_errors()}}},
        "/v2/health/live": open_route,
        "/v2/health/ready": open_route,
        "/v2/models/{name}": {"parameters": [NAME], **metadata},
        "/v2/models/{name}/ready": {"parameters": [NAME], **ready},
        "/v2/models/{name}/infer": {"parameters": [NAME], **infer},
        "/v2/models/{name}/versions/{version}": {"parameters": [NAME, version], **metadata},
        "/v2/models/{name}/versions/{version}/ready": {"parameters": [NAME, version], **ready},
        "/v2/models/{name}/versions/{version}/infer": {"parameters": [NAME, version], **infer},
    }


def _function_urls() -> dict[str, Any]:
    url = {
        "description": "The function as a web endpoint (Lambda function URL, payload 2.0); "
        "every HTTP method is accepted. A key that may invoke the function is needed unless "
        "its [function.url] auth_type is NONE; with [function.url.cors] the platform answers "
        "CORS preflights (OPTIONS) itself, without a key.",
        # {}: no key, for a public URL.
        "security": [{"bearer": []}, {"sigv4": []}, {}],
        "responses": {"default": {"description": "The handler's HTTP response"}, **_errors()},
    }
    path = _param("path", type="string")
    methods = ("get", "post", "put", "patch", "delete", "options")
    return {
        "/fn/{name}": {"parameters": [NAME], **dict.fromkeys(methods, url)},
        "/fn/{name}/{path}": {"parameters": [NAME, path], **dict.fromkeys(methods, url)},
    }


def document() -> dict[str, Any]:
    from mlambda.gateway.openapi_events import (
        async_paths,
        cost_paths,
        event_invoke_config_paths,
        job_paths,
        queue_paths,
    )
    from mlambda.gateway.openapi_lambda import lambda_paths
    from mlambda.gateway.openapi_observe import observe_paths
    from mlambda.gateway.openapi_triggers import event_paths, sqs_paths, trigger_paths
    from mlambda.gateway.openapi_versions import version_paths

    text_200 = {"200": {"description": "Text", "content": {"text/plain": {}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "mlambda", "version": __version__},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "sigv4": {"type": "apiKey", "in": "header", "name": "Authorization"},
            },
            "schemas": _schemas(),
        },
        "security": [{"bearer": []}, {"sigv4": []}],
        "paths": {
            "/healthz": {
                "get": {
                    "security": [],
                    "responses": {"200": _json(OBJECT, "Alive, and the sandbox")},
                }
            },
            "/metrics": {"get": {"responses": {**text_200, **_errors()}}},
            "/openapi.json": {"get": {"responses": {"200": _json(OBJECT, "This"), **_errors()}}},
            **_functions(),
            **version_paths(),
            **_admin(),
            **_lambda(),
            **lambda_paths(),
            **async_paths(),
            **observe_paths(),
            **queue_paths(),
            **trigger_paths(),
            **sqs_paths(),
            **event_paths(),
            **job_paths(),
            **cost_paths(),
            **event_invoke_config_paths(),
            **_inference_protocol(),
            **_function_urls(),
        },
    }
