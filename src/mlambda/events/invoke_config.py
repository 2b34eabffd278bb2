"""The Lambda API's FunctionEventInvokeConfig <-> ``[function.async]`` (pure)."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from mlambda.errors import InvalidSpec
from mlambda.events.config import AsyncSpec, check_async
from mlambda.runtime.context import ACCOUNT, function_arn

FUNCTION_ARN = re.compile(r"arn:aws[\w-]*:lambda:[\w-]*:\d*:function:([A-Za-z0-9_-]{1,64})")
# An SQS queue's ARN names a platform queue (mlambda://NAME) of the same name.
QUEUE_ARN = re.compile(r"arn:aws[\w-]*:sqs:[\w-]*:\d*:([A-Za-z0-9_-]{1,80})")
FIELDS = {"MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"}


def _target(destination: Any, where: str) -> str:
    """A destination ARN (a Lambda function's, an SQS queue's) or an http(s) URL ->
    ``function:NAME`` / ``mlambda://NAME`` / URL."""
    if destination in (None, ""):
        return ""
    if not isinstance(destination, str):
        raise InvalidSpec(f"DestinationConfig.{where}.Destination must be a string")
    match = FUNCTION_ARN.fullmatch(destination)
    if match:
        return f"function:{match[1]}"
    match = QUEUE_ARN.fullmatch(destination)
    if match:
        return f"mlambda://{match[1]}"
    if destination.startswith(("http://", "https://")):
        return destination
    raise InvalidSpec(
        f"DestinationConfig.{where}.Destination {destination!r}: mlambda delivers to a Lambda "
        "function ARN (another function here), an SQS queue ARN (the platform queue of that "
        "name) or an http(s) URL (a webhook)"
    )


def from_lambda(body: dict[str, Any], function: str, base: AsyncSpec | None = None) -> AsyncSpec:
    """A Put (``base`` None: unset fields take the defaults) or an Update (over ``base``)."""
    unknown = set(body) - FIELDS
    if unknown:
        raise InvalidSpec(f"unknown field(s) {', '.join(sorted(unknown))}")
    values = msgspec.structs.asdict(base or AsyncSpec())
    if "MaximumRetryAttempts" in body:
        values["maximum_retry_attempts"] = body["MaximumRetryAttempts"]
    if "MaximumEventAgeInSeconds" in body:
        values["maximum_event_age_s"] = body["MaximumEventAgeInSeconds"]
    destinations = body.get("DestinationConfig")
    if destinations is not None:
        if not isinstance(destinations, dict):
            raise InvalidSpec("DestinationConfig must be an object")
        for key, field in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
            if key in destinations:
                entry = destinations[key] or {}
                values[field] = _target(entry.get("Destination"), key)
    try:
        config = msgspec.convert(values, AsyncSpec)
    except msgspec.ValidationError as exc:
        raise InvalidSpec(str(exc)) from None
    check_async(config, "event invoke config", function)
    return config


def _arn(target: str, region: str) -> str | None:
    if not target:
        return None
    if target.startswith("function:"):
        return function_arn(target.removeprefix("function:"), region=region)
    if target.startswith("mlambda://"):
        return f"arn:aws:sqs:{region}:{ACCOUNT}:{target.removeprefix('mlambda://')}"
    return target


def to_lambda(config: AsyncSpec, function: str, region: str, modified: float) -> dict[str, Any]:
    return {
        "LastModified": modified,
        "FunctionArn": function_arn(function, "$LATEST", region),
        "MaximumRetryAttempts": config.maximum_retry_attempts,
        "MaximumEventAgeInSeconds": int(config.maximum_event_age_s),
        "DestinationConfig": {
            "OnSuccess": {"Destination": _arn(config.on_success, region)}
            if config.on_success
            else {},
            "OnFailure": {"Destination": _arn(config.on_failure, region)}
            if config.on_failure
            else {},
        },
    }
