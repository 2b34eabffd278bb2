"""The Lambda context object handed to ``handler(event, context)``."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from mlambda.runtime.trace_header import parse_xray, traceparent

ACCOUNT = "000000000000"


def log_stream_name(version: str, instance_id: str) -> str:
    """Lambda's log stream name: the same in AWS_LAMBDA_LOG_STREAM_NAME and ``context``."""
    return time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{version}]{instance_id}"


def function_arn(name: str, qualifier: str = "", region: str | None = None) -> str:
    """The function's ARN in this platform's region (AWS_REGION), qualified if invoked so."""
    region = region or os.environ.get("AWS_REGION", "us-east-1")
    arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


class Client:
    """``context.client_context.client``: what a mobile SDK says of the app that called."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.installation_id = fields.get("installation_id")
        self.app_title = fields.get("app_title")
        self.app_version_name = fields.get("app_version_name")
        self.app_version_code = fields.get("app_version_code")
        self.app_package_name = fields.get("app_package_name")


class ClientContext:
    """``context.client_context``: the caller's ClientContext, as the Lambda runtime parses it."""

    def __init__(self, fields: dict[str, Any]) -> None:
        client = fields.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = fields.get("custom")
        self.env = fields.get("env")


def parse_client_context(raw: str | None) -> ClientContext | None:
    """None when the caller sent none, or sent something that is not a JSON object."""
    if not raw:
        return None
    try:
        fields = json.loads(raw)
    except ValueError:
        return None
    return ClientContext(fields) if isinstance(fields, dict) else None


class LambdaContext:
    """The attributes and method of AWS Lambda's Python context, with the same names and types."""

    def __init__(
        self,
        *,
        request_id: str,
        function_name: str,
        function_version: str,
        memory_mb: int,
        log_stream_name: str,
        deadline_ms: int,
        client_context: str | None = None,
        invoked_arn: str = "",
        trace: str = "",
    ) -> None:
        self.aws_request_id = request_id
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_arn or function_arn(function_name)
        # Lambda hands this over as a string (from AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
        self.memory_limit_in_mb = str(memory_mb)
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name
        self.identity = None
        self.client_context = parse_client_context(client_context)
        self._deadline_ms = deadline_ms
        self._trace = trace

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def w3c(self) -> dict[str, str]:
        """The invocation's W3C trace context, as Lambda's runtime gives it: its traceparent
        names the handler's span (the same trace as _X_AMZN_TRACE_ID)."""
        found = parse_xray(self._trace) if self._trace else None
        return {"traceparent": traceparent(found)} if found is not None else {}

    def __repr__(self) -> str:
        return (
            f"LambdaContext(aws_request_id={self.aws_request_id!r}, "
            f"function_name={self.function_name!r}, function_version={self.function_version!r})"
        )
