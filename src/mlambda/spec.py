"""FunctionSpec: parse and validate ``mlambda.toml`` (pure; every error names the field)."""

from __future__ import annotations

import difflib
import posixpath
import re
import tomllib
from typing import Any

import msgspec

from mlambda.errors import InvalidSpec
from mlambda.events.config import AsyncSpec, check_async
from mlambda.events.triggers.config import TriggerSpec, parse_triggers
from mlambda.events.triggers.sources import Source
from mlambda.runtime.loaders import FRAMEWORKS, PICKLE_SUFFIXES
from mlambda.runtime.loaders import preload as runtime_preload
from mlambda.runtimes import check_provided, is_provided, is_supported, unsupported
from mlambda.urlconfig import CorsSpec, UrlSpec, check_url

SPEC_FILE = "mlambda.toml"
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
HANDLER_PATTERN = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
MODULE_PATTERN = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
NETWORKS = ("any", "none", "platform")
# Bounds on what a spec may hold (an instance's environment is copied into every process).
MAX_DESCRIPTION = 1024
MAX_PRELOAD = 64
MAX_ENVIRONMENT_BYTES = 64 * 1024
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
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_EXECUTION_ENV",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "_HANDLER",
        "MLAMBDA_BOOTSTRAP",  # the platform's own: which bootstrap an instance runs
    }
)


class BatchSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[function.batch]``: merge queued requests into one call of the model or batch handler."""

    # At most this many requests in one batch.
    max_size: int = 8
    # How long a batch waits for more requests once an instance is free. 0: a request goes at
    # once when an instance is idle; requests that queue while it is busy form the next batch.
    max_wait_ms: float = 0.0
    # At most this many payload bytes in one batch (a single larger request still goes alone).
    max_bytes: int = 6 * 1024 * 1024


class FunctionSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One function's configuration, as ``[function]`` in mlambda.toml declares it."""

    name: str
    # "module:function" for code; for a model function, optionally a module whose
    # preprocess(inputs) / postprocess(outputs) hooks run around the model.
    handler: str = ""
    # A model file (or directory) in the bundle, served by a built-in runtime.
    model: str = ""
    # The runtime for ``model``; chosen from the file when not given.
    framework: str = ""
    # Allow joblib/pickle model files, which run code when loaded.
    trust_pickle: bool = False
    # Dynamic batching; absent means every request is its own call.
    batch: BatchSpec | None = None
    # The function URL's auth (a key by default, or public) and CORS (urlconfig.py).
    url: UrlSpec | None = None
    # Retries and event age of asynchronous invocations (events/config.py).
    async_: AsyncSpec | None = msgspec.field(default=None, name="async")
    description: str = ""
    # The Lambda API's Runtime and Role, kept and returned as given. A python3.x runtime runs
    # on the platform's Python, a provided one the bundle's bootstrap (runtimes.py); a role
    # grants nothing here (API keys do).
    runtime: str = ""
    role: str = ""
    # Memory reported to the handler (context.memory_limit_in_mb) and in the REPORT line.
    memory_mb: int = 512
    # CPU cores the instance may use (a CFS quota where a cpu cgroup can be made), or
    # "proportional": in proportion to memory_mb as Lambda gives them. Native thread pools
    # get at most this many threads (unset: the machine's cores), fewer as more instances run
    # (pool/threads.py).
    cpu: float | str | None = None
    # Each instance's private /tmp (Lambda's ephemeral storage), in MB: a tmpfs, so what is
    # written there also counts against memory_mb.
    ephemeral_storage_mb: int = 512
    # What an instance may reach: "any" network; "none" (loopback only, its own namespace);
    # "platform" (that, and the gateway at 127.0.0.1:<serve's port>, still with a key).
    network: str = "any"
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
    # Requests per second this function accepts from all callers together (a token bucket of
    # rate_limit_burst tokens; default: one second's worth); over it: 429 with Retry-After.
    rate_limit: float | None = None
    rate_limit_burst: float | None = None
    # How long a request may wait for a free instance before 429; None means timeout_s.
    queue_timeout_s: float | None = None
    # Packages the instance imports before the handler module (warms the runtime).
    preload: list[str] = []
    env: dict[str, str] = {}
    # Like env, but stored encrypted, never returned by the API nor written to logs: the
    # registry keeps their names only (the values are read from the verified bundle).
    secrets: dict[str, str] = {}
    # With the zygote backend, fork instances from a template whose init already ran; false
    # when init starts threads (instances then fork from the runtime zygote and run init).
    fork_template: bool = True
    # A template with no instance left is evicted after this long; the next cold start then
    # forks the runtime zygote and runs init again.
    template_keep_alive_s: float = 900.0
    # The template warms up before it forks: the handler module's prime(context), or one call
    # of a model on a sample of its input signature. Instances inherit what it warmed.
    prime: bool = True

    @property
    def queue_timeout(self) -> float:
        return self.timeout_s if self.queue_timeout_s is None else self.queue_timeout_s

    @property
    def rate(self) -> tuple[float, float] | None:
        """(requests per second, burst) of the function's own rate limit, if it has one."""
        if self.rate_limit is None:
            return None
        return self.rate_limit, self.rate_limit_burst or max(1.0, self.rate_limit)

    @property
    def is_model(self) -> bool:
        return bool(self.model)

    @property
    def is_provided(self) -> bool:
        """A custom runtime: the bundle's bootstrap serves the calls (runtime/provided.py)."""
        return is_provided(self.runtime)

    @property
    def modules_to_preload(self) -> list[str]:
        """What the runtime zygote imports: the model runtime's packages, then ``preload``."""
        return list(dict.fromkeys([*runtime_preload(self.framework, self.model), *self.preload]))

    @property
    def handler_module(self) -> str:
        return self.handler.split(":", 1)[0]

    @property
    def handler_function(self) -> str:
        return self.handler.split(":", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)

    def redacted(self) -> FunctionSpec:
        """The spec as the registry keeps it: secrets by name, with no values."""
        return msgspec.structs.replace(self, secrets=dict.fromkeys(self.secrets, ""))


_FIELDS = FunctionSpec.__struct_encode_fields__
_RANGES: dict[str, tuple[float, float]] = {
    "memory_mb": (64, 32768),
    "ephemeral_storage_mb": (16, 10240),
    "cpu": (0.05, 256),
    "timeout_s": (0.001, 900),
    "init_timeout_s": (0.001, 900),
    "concurrency": (1, 1000),
    "min_instances": (0, 1000),
    "max_instances": (1, 1000),
    "keep_alive_s": (0, 7 * 24 * 3600),
    "queue_timeout_s": (0, 900),
    "rate_limit": (0.001, 1_000_000),
    "rate_limit_burst": (1, 1_000_000),
    "template_keep_alive_s": (0, 7 * 24 * 3600),
}


def parse_spec(
    text: str, *, source: str = SPEC_FILE, name: str | None = None, name_from: str = ""
) -> FunctionSpec:
    """Parse mlambda.toml text; ``name`` (a CLI ``--name``, the deploy URL's name: said in
    ``name_from``) overrides ``function.name`` and is blamed for its own faults."""
    if name is not None and not NAME_PATTERN.fullmatch(name):
        raise InvalidSpec(
            f"{name_from or 'the function name'} must be 1-64 letters, digits, '-' or '_', "
            f"got {name!r}"
        )
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidSpec(f"{source}: not valid TOML: {exc}") from None
    table = document.get("function")
    if not isinstance(table, dict):
        raise InvalidSpec(f"{source}: missing the [function] table (name and handler at least)")
    for key in document:
        if key not in ("function", "triggers"):
            raise InvalidSpec(f"{source}: unknown table [{key}]; settings go under [function]")
    if "triggers" in table:
        raise InvalidSpec(f"{source}: triggers go in [[triggers]] tables, not under [function]")
    if "triggers" in document:  # checked here so a deploy refuses a bad one (triggers_of)
        parse_triggers(document["triggers"], source)
    if name is not None:
        table = {**table, "name": name}
    return spec_from_dict(table, source=source)


def triggers_of(text: str, source: str = SPEC_FILE) -> list[tuple[TriggerSpec, Source]]:
    """The ``[[triggers]]`` of an mlambda.toml that parse_spec accepted."""
    return parse_triggers(tomllib.loads(text).get("triggers", []), source)


def spec_from_dict(table: dict[str, Any], *, source: str = SPEC_FILE) -> FunctionSpec:
    for key in table:
        if key not in _FIELDS:
            raise InvalidSpec(f"{source}: unknown field function.{key}{_did_you_mean(key)}")
    if "name" not in table:
        raise InvalidSpec(f"{source}: function.name is required")
    if "handler" not in table and "model" not in table:
        raise InvalidSpec(
            f"{source}: function.handler is required ('module:function'), or function.model "
            "to serve a model file with no code"
        )
    model = table.get("model")
    if isinstance(model, str) and model:
        # "./model.onnx" and "model/" name what the bundle lists as "model.onnx" and "model".
        normalized = posixpath.normpath(model)
        if model.startswith("/") or normalized == "." or normalized.startswith("../"):
            raise InvalidSpec(
                f"{source}: function.model must be a path inside the bundle, got {model!r}"
            )
        table = {**table, "model": normalized}
    elif table.get("framework") or table.get("trust_pickle"):
        raise InvalidSpec(
            f"{source}: function.framework and function.trust_pickle apply to model functions "
            "only; set function.model to the model file"
        )
    url = table.get("url")
    for section, struct, fields in (
        ("batch", BatchSpec, table.get("batch")),
        ("url", UrlSpec, url),
        ("url.cors", CorsSpec, url.get("cors") if isinstance(url, dict) else None),
        ("async", AsyncSpec, table.get("async")),
    ):
        for key in fields if isinstance(fields, dict) else ():
            if key not in struct.__struct_fields__:
                close = difflib.get_close_matches(key, struct.__struct_fields__, n=1)
                hint = f" (did you mean function.{section}.{close[0]}?)" if close else ""
                raise InvalidSpec(f"{source}: unknown field function.{section}.{key}{hint}")
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
    if spec.runtime and not is_supported(spec.runtime):
        raise InvalidSpec(f"{source}: function.runtime {unsupported(spec.runtime)}")
    if spec.is_provided:
        check_provided(spec, source)
    elif spec.model:
        _check_model(spec, source)
    elif not HANDLER_PATTERN.fullmatch(spec.handler):
        hint = ""
        if "." in spec.handler and ":" not in spec.handler:
            module, _, function = spec.handler.rpartition(".")
            hint = f" (did you mean '{module}:{function}'?)"
        raise InvalidSpec(
            f"{source}: function.handler must be 'module:function', got {spec.handler!r}{hint}"
        )
    if isinstance(spec.cpu, str) and spec.cpu != "proportional":
        raise InvalidSpec(
            f'{source}: function.cpu must be a number of cores or "proportional" (cores in '
            f"proportion to memory_mb, as Lambda), got {spec.cpu!r}"
        )
    for field, (low, high) in _RANGES.items():
        value = getattr(spec, field)
        if value is not None and not isinstance(value, str) and not low <= value <= high:
            raise InvalidSpec(
                f"{source}: function.{field} must be between {low:g} and {high:g}, got {value!r}"
            )
    if spec.batch is not None:
        for field, (low, high) in _BATCH_RANGES.items():
            value = getattr(spec.batch, field)
            if not low <= value <= high:
                raise InvalidSpec(
                    f"{source}: function.batch.{field} must be between {low:g} and {high:g}, "
                    f"got {value!r}"
                )
    if spec.url is not None:
        check_url(spec.url, source)
    if spec.async_ is not None:
        check_async(spec.async_, source, spec.name)
    if spec.network not in NETWORKS:
        close = difflib.get_close_matches(spec.network, NETWORKS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidSpec(
            f"{source}: function.network must be one of {', '.join(NETWORKS)}, "
            f"got {spec.network!r}{hint}"
        )
    if len(spec.role) > 2048:
        raise InvalidSpec(f"{source}: function.role is over 2048 characters")
    if spec.min_instances > spec.max_instances:
        raise InvalidSpec(
            f"{source}: function.min_instances ({spec.min_instances}) must not exceed "
            f"function.max_instances ({spec.max_instances})"
        )
    for table, names in (("env", spec.env), ("secrets", spec.secrets)):
        for key in names:
            if not ENV_NAME_PATTERN.fullmatch(key):
                raise InvalidSpec(
                    f"{source}: function.{table} key {key!r} is not a valid variable name"
                )
            if key in RESERVED_ENV:
                raise InvalidSpec(
                    f"{source}: function.{table}.{key} is reserved and set by the platform"
                )
    if len(spec.description) > MAX_DESCRIPTION:
        raise InvalidSpec(f"{source}: function.description is over {MAX_DESCRIPTION} characters")
    if len(spec.preload) > MAX_PRELOAD:
        raise InvalidSpec(f"{source}: function.preload lists over {MAX_PRELOAD} modules")
    size = sum(len(k) + len(v) for table in (spec.env, spec.secrets) for k, v in table.items())
    if size > MAX_ENVIRONMENT_BYTES:
        raise InvalidSpec(
            f"{source}: function.env and function.secrets hold {size} characters together; "
            f"at most {MAX_ENVIRONMENT_BYTES} (put data in the bundle instead)"
        )
    both = sorted(set(spec.env) & set(spec.secrets))
    if both:
        raise InvalidSpec(
            f"{source}: {', '.join(both)} is set in both function.env and function.secrets; "
            "keep it in one"
        )


_BATCH_RANGES: dict[str, tuple[float, float]] = {
    "max_size": (1, 4096),
    "max_wait_ms": (0, 10_000),
    "max_bytes": (1, 64 * 1024 * 1024),
}


def _check_model(spec: FunctionSpec, source: str) -> None:
    if spec.handler and not MODULE_PATTERN.fullmatch(spec.handler):
        raise InvalidSpec(
            f"{source}: with function.model, function.handler names a module with optional "
            f"preprocess/postprocess hooks (like 'hooks'), got {spec.handler!r}"
        )
    if spec.model.startswith("/") or ".." in spec.model.split("/"):
        raise InvalidSpec(
            f"{source}: function.model must be a path inside the bundle, got {spec.model!r}"
        )
    if spec.framework and spec.framework not in FRAMEWORKS:
        close = difflib.get_close_matches(spec.framework, FRAMEWORKS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidSpec(
            f"{source}: function.framework {spec.framework!r} is not a built-in runtime{hint}; "
            f"choose one of {', '.join(FRAMEWORKS)}"
        )
    if spec.model.lower().endswith(PICKLE_SUFFIXES) and not spec.trust_pickle:
        raise InvalidSpec(pickle_refusal(spec.model, source))


def pickle_refusal(model: str, source: str = SPEC_FILE) -> str:
    return (
        f"{source}: refusing to load {model!r}: joblib/pickle files run arbitrary code when "
        "they are loaded. Save the model with skops instead (skops.io.dump(model, "
        "'model.skops')), or, if you made this file yourself and trust it, set "
        "trust_pickle = true under [function] (`mlambda deploy --trust-pickle` for a bare "
        "model file)"
    )


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
