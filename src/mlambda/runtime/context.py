"""The Lambda context object handed to ``handler(event, context)``."""

from __future__ import annotations

import time
from typing import Any

ARN_PREFIX = "arn:aws:lambda:local:000000000000:function:"


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
        client_context: Any = None,
    ) -> None:
        self.aws_request_id = request_id
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = ARN_PREFIX + function_name
        # Lambda hands this over as a string (from AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
        self.memory_limit_in_mb = str(memory_mb)
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name
        self.identity = None
        self.client_context = client_context
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return (
            f"LambdaContext(aws_request_id={self.aws_request_id!r}, "
            f"function_name={self.function_name!r}, function_version={self.function_version!r})"
        )
