"""Lambda API calls that are not served here, by name, so a client is told which one it made
(an error botocore parses) instead of a bare 404."""

from __future__ import annotations

import re

from starlette.responses import Response

from mlambda.errors import NotFound
from mlambda.gateway.lambda_api.common import aws_error

_F = r"/2015-03-31/functions/[^/]+"
OPERATIONS = tuple(
    (method, re.compile(path + "/?"), name)
    for method, path, name in (
        ("GET", f"{_F}/policy", "GetPolicy"),
        ("POST", f"{_F}/policy", "AddPermission"),
        ("DELETE", f"{_F}/policy/[^/]+", "RemovePermission"),
        ("GET", r"/2015-03-31/event-source-mappings", "ListEventSourceMappings"),
        ("POST", r"/2015-03-31/event-source-mappings", "CreateEventSourceMapping"),
        ("POST", r"/2014-11-13/functions/[^/]+/invoke-async", "InvokeAsync"),
        (
            "POST",
            r"/2021-11-15/functions/[^/]+/response-streaming-invocations",
            "InvokeWithResponseStream",
        ),
        ("PUT", r"/2017-10-31/functions/[^/]+/recursion-config", "PutFunctionRecursionConfig"),
        ("GET", r"/2021-10-31/functions/[^/]+/urls", "ListFunctionUrlConfigs"),
        ("GET", r"/2017-03-31/tags/.+", "ListTags"),
        ("POST", r"/2017-03-31/tags/.+", "TagResource"),
        ("GET", r"/2018-10-31/layers", "ListLayers"),
    )
)


class UnknownOperation(NotFound):
    error_type = "UnknownOperationException"


def unknown_operation(method: str, path: str) -> Response:
    """What a Lambda API call that is not served here gets: an error botocore parses."""
    name = next((n for m, p, n in OPERATIONS if m == method and p.fullmatch(path)), "")
    called = f"{name} ({method} {path})" if name else f"{method} {path}"
    return aws_error(
        UnknownOperation(
            f"The Lambda API operation {called} is not available in mlambda; docs/lambda.md "
            "lists the operations it serves. The rest is in the mlambda API (/openapi.json)."
        )
    )
