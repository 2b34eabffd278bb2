"""FunctionSpec: parse and validate ``mlambda.toml`` (pure; every error names the field)."""

from __future__ import annotations

import difflib
import re
import tomllib
from typing import Any

import msgspec

from mlambda.errors import InvalidSpec

SPEC_FILE = "mlambda.toml"
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
HANDLER_PATTERN = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
ENV_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Patterns are used with fullmatch: "$" would accept a trailing newline.
# Variables the platform sets for every instance (Lambda's reserved names); a spec may not override.
RESERVED_ENV = frozenset(
    {
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "LAMBDA_TASK_ROOT",
        "_HANDLER",
    }
)


class FunctionSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One function's configuration, as ``[function]`` in mlambda.toml declares it."""

    name: str
    handler: str
    description: str = ""
    # Memory reported to the handler (context.memory_limit_in_mb) and in the REPORT line.
    memory_mb: int = 512
    # CPU cores the instance may use (a CFS quota where a cpu cgroup can be made); native
    # thread pools (OpenMP, BLAS, torch) are sized to it. Unset: no quota, one thread each.
    cpu: float | None = None
    # A handler running longer than this is killed and the caller gets a timeout error.
    timeout_s: float = 30.0
    # Module-level init (loading the model) may take longer than one invocation.
    init_timeout_s: float = 60.0
    # Requests one instance serves at the same time (threads inside the instance).
    concurrency: int = 1
    min_instances: int = 0
    max_instances: int = 4
    # An instance idle this long is stopped (scale to zero unless min_instances keeps it).
    keep_alive_s: float = 300.0
    # How long a request may wait for a free instance before 429; None means timeout_s.
    queue_timeout_s: float | None = None
    # Packages the instance imports before the handler module (warms the runtime).
    preload: list[str] = []
    env: dict[str, str] = {}
    # With the zygote backend, fork instances from a template whose init already ran; false
    # when init starts threads (instances then fork from the runtime zygote and run init).
    fork_template: bool = True
    # A template with no instance left is evicted after this long; the next cold start then
    # forks the runtime zygote and runs init again.
    template_keep_alive_s: float = 900.0

    @property
    def queue_timeout(self) -> float:
        return self.timeout_s if self.queue_timeout_s is None else self.queue_timeout_s

    @property
    def threads(self) -> int:
        """Threads for native thread pools in one instance."""
        return max(1, int(self.cpu)) if self.cpu else 1

    @property
    def handler_module(self) -> str:
        return self.handler.split(":", 1)[0]

    @property
    def handler_function(self) -> str:
        return self.handler.split(":", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


_FIELDS = FunctionSpec.__struct_fields__
_RANGES: dict[str, tuple[float, float]] = {
    "memory_mb": (64, 32768),
    "cpu": (0.05, 256),
    "timeout_s": (0.001, 900),
    "init_timeout_s": (0.001, 900),
    "concurrency": (1, 1000),
    "min_instances": (0, 1000),
    "max_instances": (1, 1000),
    "keep_alive_s": (0, 7 * 24 * 3600),
    "queue_timeout_s": (0, 900),
    "template_keep_alive_s": (0, 7 * 24 * 3600),
}


def parse_spec(text: str, *, source: str = SPEC_FILE, name: str | None = None) -> FunctionSpec:
    """Parse mlambda.toml text; ``name`` (a CLI ``--name``) overrides ``function.name``."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidSpec(f"{source}: not valid TOML: {exc}") from None
    table = document.get("function")
    if not isinstance(table, dict):
        raise InvalidSpec(f"{source}: missing the [function] table (name and handler at least)")
    for key in document:
        if key != "function":
            raise InvalidSpec(f"{source}: unknown table [{key}]; settings go under [function]")
    if name is not None:
        table = {**table, "name": name}
    return spec_from_dict(table, source=source)


def spec_from_dict(table: dict[str, Any], *, source: str = SPEC_FILE) -> FunctionSpec:
    for key in table:
        if key not in _FIELDS:
            raise InvalidSpec(f"{source}: unknown field function.{key}{_did_you_mean(key)}")
    for key in ("name", "handler"):
        if key not in table:
            raise InvalidSpec(f"{source}: function.{key} is required")
    try:
        spec = msgspec.convert(table, FunctionSpec)
    except msgspec.ValidationError as exc:
        raise InvalidSpec(f"{source}: {_field_message(str(exc))}") from None
    _check(spec, source)
    return spec


def _check(spec: FunctionSpec, source: str) -> None:
    if not NAME_PATTERN.fullmatch(spec.name):
        raise InvalidSpec(
            f"{source}: function.name must be 1-64 letters, digits, '-' or '_', got {spec.name!r}"
        )
    if not HANDLER_PATTERN.fullmatch(spec.handler):
        hint = ""
        if "." in spec.handler and ":" not in spec.handler:
            module, _, function = spec.handler.rpartition(".")
            hint = f" (did you mean '{module}:{function}'?)"
        raise InvalidSpec(
            f"{source}: function.handler must be 'module:function', got {spec.handler!r}{hint}"
        )
    for field, (low, high) in _RANGES.items():
        value = getattr(spec, field)
        if value is not None and not low <= value <= high:
            raise InvalidSpec(
                f"{source}: function.{field} must be between {low:g} and {high:g}, got {value!r}"
            )
    if spec.min_instances > spec.max_instances:
        raise InvalidSpec(
            f"{source}: function.min_instances ({spec.min_instances}) must not exceed "
            f"function.max_instances ({spec.max_instances})"
        )
    for key in spec.env:
        if not ENV_NAME_PATTERN.fullmatch(key):
            raise InvalidSpec(f"{source}: function.env key {key!r} is not a valid variable name")
        if key in RESERVED_ENV:
            raise InvalidSpec(f"{source}: function.env.{key} is reserved and set by the platform")


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key, _FIELDS, n=1)
    return f" (did you mean function.{close[0]}?)" if close else ""


def _field_message(message: str) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.memory_mb`"; lead with the field instead.
    match = re.match(r"(.*) - at `\$\.?(.*)`$", message)
    if not match:
        return message
    detail, path = match.groups()
    return f"function.{path}: {detail[0].lower()}{detail[1:]}"
