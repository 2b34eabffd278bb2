"""Loading the user's handler and turning its outcome into Lambda's shapes."""

from __future__ import annotations

import decimal
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any, Any], Any]
# Where stack traces place the function's own files, as on Lambda: the same on every machine.
TASK_ROOT_SHOWN = "/var/task"


class InitFailure(Exception):
    """The handler could not be loaded; ``payload`` is Lambda's error body for it."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload["errorMessage"])
        self.payload = payload


def preload(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise InitFailure(
                error_payload(exc, "Runtime.ImportModuleError", f"Unable to preload {name!r}: ")
            ) from exc


def load(handler: str, task_root: str) -> Handler:
    """Import ``module:function`` from ``task_root``: module-level init runs here."""
    module_name, _, function_name = handler.partition(":")
    # The task root first on sys.path and as the working directory, as Lambda's /var/task is.
    try:
        os.chdir(task_root)
    except OSError as exc:
        raise InitFailure(error_payload(exc, "Runtime.InitError")) from exc
    sys.path.insert(0, task_root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if getattr(exc, "name", None) == module_name:
            raise InitFailure(
                error_payload(
                    exc, "Runtime.ImportModuleError", f"Unable to import {module_name!r}: "
                )
            ) from exc
        raise InitFailure(error_payload(exc, "Runtime.InitError")) from exc
    except SyntaxError as exc:
        raise InitFailure(error_payload(exc, "Runtime.UserCodeSyntaxError")) from exc
    except BaseException as exc:
        raise InitFailure(error_payload(exc, "Runtime.InitError")) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise InitFailure(
            {
                "errorMessage": f"Handler {function_name!r} missing on module {module_name!r}",
                "errorType": "Runtime.HandlerNotFound",
                "stackTrace": [],
            }
        )
    return function


def error_payload(
    exc: BaseException, error_type: str | None = None, prefix: str = ""
) -> dict[str, Any]:
    """Lambda's error body: the message, the type and the stack of the user's frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    user_frames = [f for f in frames if "/mlambda/runtime/" not in f.filename] or list(frames)
    user_frames = [_shown(frame, os.environ.get("LAMBDA_TASK_ROOT", "")) for frame in user_frames]
    message = prefix + str(exc)
    if error_type and error_type.startswith("Runtime."):
        message = f"{message} ({type(exc).__name__})" if prefix else f"{type(exc).__name__}: {exc}"
    return {
        "errorMessage": message,
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(user_frames),
    }


def _shown(frame: traceback.FrameSummary, task_root: str) -> traceback.FrameSummary:
    """The frame with a file of the bundle named under /var/task instead of the cache."""
    root = task_root.rstrip("/") + "/"
    if not task_root or not frame.filename.startswith(root):
        return frame
    shown = f"{TASK_ROOT_SHOWN}/{frame.filename[len(root) :]}"
    return traceback.FrameSummary(shown, frame.lineno, frame.name, line=frame.line)


def error_log(payload: dict[str, Any]) -> str:
    """The lines Lambda's Python runtime writes to the function's log for an error."""
    lines = [f"[ERROR] {payload.get('errorType', '')}: {payload.get('errorMessage', '')}"]
    stack = payload.get("stackTrace")
    if stack:
        lines.append("Traceback (most recent call last):")
        lines.extend(line for entry in stack for line in str(entry).splitlines())
    return "\n".join(lines) + "\n"


def _default(value: Any) -> Any:
    # Lambda's runtime encodes Decimal (as boto3's DynamoDB types return) as a number.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def marshal(result: Any) -> bytes:
    try:
        return json.dumps(result, default=_default).encode()
    except (TypeError, ValueError) as exc:
        raise MarshalError(f"Unable to marshal response: {exc}") from None


class MarshalError(Exception):
    pass


class BatchResultError(Exception):
    pass


def load_model(config: Any, *, defer: bool) -> Any:
    """A model function's handler (imports numpy and the framework: model instances only)."""
    from mlambda.runtime.model import ModelHandler

    try:
        return ModelHandler(config, defer=defer)
    except ImportError as exc:
        raise InitFailure(
            error_payload(exc, "Runtime.ImportModuleError", "Unable to load the model runtime: ")
        ) from exc
    except BaseException as exc:
        raise InitFailure(
            error_payload(exc, "Runtime.InitError", "Unable to load the model: ")
        ) from exc


def model_input_error(outcome: Any) -> Any:
    """A model's per-request outcome, with input problems marked for a 400."""
    if type(outcome).__name__ == "InvalidInput":
        return ModelInputError(str(outcome))
    return outcome


class ModelInputError(Exception):
    """The caller's input does not fit the model (errorType Model.InvalidInput, HTTP 400)."""


class ResponseTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"Response payload size ({size} bytes) exceeded maximum allowed ({limit} bytes)"
        )


def decode_event(payload: bytes) -> Any:
    """The event is the request's JSON; an empty body is an empty event, as Lambda passes {}."""
    return json.loads(payload) if payload.strip() else {}


def invocation_error(exc: BaseException, request_id: str) -> dict[str, Any]:
    if isinstance(exc, MarshalError):
        payload = {"errorMessage": str(exc), "errorType": "Runtime.MarshalError", "stackTrace": []}
    elif isinstance(exc, ModelInputError):
        payload = {"errorMessage": str(exc), "errorType": "Model.InvalidInput", "stackTrace": []}
    elif isinstance(exc, BatchResultError):
        payload = {"errorMessage": str(exc), "errorType": "Runtime.BatchError", "stackTrace": []}
    elif isinstance(exc, ResponseTooLarge):
        payload = {
            "errorMessage": str(exc),
            "errorType": "Function.ResponseSizeTooLarge",
            "stackTrace": [],
        }
    else:
        payload = error_payload(exc)
    payload["requestId"] = request_id
    return payload
