"""The OpenAPI document's Lambda management routes (botocore's paths; the bodies are Lambda's
shapes, docs/lambda.md has the operations)."""

from __future__ import annotations

from typing import Any

from mlambda.gateway.openapi import AWS_ERROR, OBJECT, _errors, _json, _param

F = "/2015-03-31/functions"
FN = f"{F}/{{name}}"
NAME = _param("name", type="string")
QUALIFIER = _param("Qualifier", "query")
PAGING = [
    _param("Marker", "query"),
    _param("MaxItems", "query", type="integer", minimum=1, maximum=10000),
]
ALIAS = _param("alias", type="string", pattern="^[A-Za-z0-9_-]{1,128}$")


def _op(
    operation: str, ok: str = "200", *errors: int, body: bool = False, params: list | None = None
) -> dict[str, Any]:
    answer = {"description": "No content"} if ok == "204" else _json(OBJECT, operation)
    shape: dict[str, Any] = {
        "description": f"Lambda's {operation}",
        "responses": {ok: answer, **_errors(400, 403, 404, *errors, schema=AWS_ERROR)},
    }
    if body:
        shape["requestBody"] = {"content": {"application/json": {"schema": OBJECT}}}
    if params:
        shape["parameters"] = params
    return shape


def lambda_paths() -> dict[str, Any]:
    url = "/2021-10-31/functions/{name}/url"
    return {
        F: {
            "get": _op(
                "ListFunctions",
                params=[*PAGING, _param("FunctionVersion", "query", enum=["ALL"])],
            ),
            "post": _op("CreateFunction", "201", 409, 413, body=True),
        },
        FN: {
            "parameters": [NAME],
            "get": _op("GetFunction", params=[QUALIFIER]),
            "delete": _op("DeleteFunction", "204", 409, params=[QUALIFIER]),
        },
        f"{FN}/configuration": {
            "parameters": [NAME],
            "get": _op("GetFunctionConfiguration", params=[QUALIFIER]),
            "put": _op("UpdateFunctionConfiguration", "200", 412, 413, body=True),
        },
        f"{FN}/code": {
            "parameters": [NAME],
            "put": _op("UpdateFunctionCode", "200", 412, 413, body=True),
        },
        f"{FN}/versions": {
            "parameters": [NAME],
            "get": _op("ListVersionsByFunction", params=PAGING),
            "post": {
                **_op("PublishVersion", "201", 412, 413, body=True),
                "responses": {
                    "201": _json(OBJECT, "the new version"),
                    "200": _json(OBJECT, "nothing changed: the last version"),
                    **_errors(400, 403, 404, 412, 413, schema=AWS_ERROR),
                },
            },
        },
        f"{FN}/aliases": {
            "parameters": [NAME],
            "get": _op("ListAliases", params=[*PAGING, _param("FunctionVersion", "query")]),
            "post": _op("CreateAlias", "201", 409, 413, body=True),
        },
        f"{FN}/aliases/{{alias}}": {
            "parameters": [NAME, ALIAS],
            "get": _op("GetAlias"),
            "put": _op("UpdateAlias", "200", 412, 413, body=True),
            "delete": _op("DeleteAlias", "204"),
        },
        url: {
            "parameters": [NAME, QUALIFIER],
            "get": _op("GetFunctionUrlConfig"),
            "post": _op("CreateFunctionUrlConfig", "201", 409, 413, body=True),
            "put": _op("UpdateFunctionUrlConfig", "200", 413, body=True),
            "delete": _op("DeleteFunctionUrlConfig", "204"),
        },
        "/2016-08-19/account-settings": {"get": _op("GetAccountSettings")},
        "/2017-10-31/functions/{name}/concurrency": {
            "parameters": [NAME],
            "put": _op("PutFunctionConcurrency", "200", 413, body=True),
            "delete": _op("DeleteFunctionConcurrency", "204"),
        },
        "/2019-09-30/functions/{name}/concurrency": {
            "parameters": [NAME],
            "get": _op("GetFunctionConcurrency"),
        },
        "/2019-09-30/functions/{name}/provisioned-concurrency": {
            "parameters": [NAME, QUALIFIER, _param("List", "query", enum=["ALL"])],
            "get": _op("GetProvisionedConcurrencyConfig"),
            "put": _op("PutProvisionedConcurrencyConfig", "202", 409, 413, body=True),
            "delete": _op("DeleteProvisionedConcurrencyConfig", "204", 409),
        },
        "/v1/code/{digest}": {
            "parameters": [
                _param("digest", type="string"),
                _param("expires", "query"),
                _param("signature", "query"),
            ],
            "get": {
                "description": "GetFunction's Code.Location: the function's code as a zip, "
                "opened by the link's signature (no key) for ten minutes",
                "security": [],
                "responses": {
                    "200": {"description": "The zip", "content": {"application/zip": {}}},
                    **_errors(403, 404),
                },
            },
        },
    }
