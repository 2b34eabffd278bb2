"""The Lambda API's shapes (botocore's service model) and mlambda's records, both ways (pure):
CreateFunction's and UpdateFunctionConfiguration's fields -> an mlambda.toml table, a record ->
FunctionConfiguration, an alias -> AliasConfiguration, a URL spec -> FunctionUrlConfig."""

from __future__ import annotations

import math
import platform as host
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

from mlambda.errors import InvalidSpec
from mlambda.registry.model import LATEST, Alias, FunctionRecord
from mlambda.runtime.context import function_arn
from mlambda.runtimes import is_provided, is_supported, unsupported
from mlambda.urlconfig import CorsSpec, UrlSpec

PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"
ARCHITECTURE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
    host.machine().lower(), "x86_64"
)
# Lambda's handler: "module.function", the module as a path ("src/app.handler") or dotted.
LAMBDA_HANDLER = re.compile(r"[A-Za-z_][\w./-]*\.[A-Za-z_]\w*")

# Lambda fields taken as they map onto mlambda.toml (Lambda name -> mlambda key).
_SIMPLE = {"Description": "description", "Role": "role", "Runtime": "runtime"}
# Fields accepted only with the value that changes nothing here (Terraform sends several).
_INERT: dict[str, Any] = {
    "PackageType": ("Zip",),
    "Layers": ([],),
    "VpcConfig": ({}, {"SubnetIds": [], "SecurityGroupIds": []}),
    "TracingConfig": ({}, {"Mode": "PassThrough"}),
    "Tags": ({},),
    "KMSKeyArn": ("",),
    "FileSystemConfigs": ([],),
    "DeadLetterConfig": ({}, {"TargetArn": ""}),
    "Architectures": ([ARCHITECTURE],),
}
_KNOWN = {*_SIMPLE, *_INERT, "Handler", "Timeout", "MemorySize", "Environment", "EphemeralStorage"}


def lambda_time(stamp: float) -> str:
    """Lambda's LastModified: ``2024-05-01T12:00:00.000+0000``."""
    millis = int(stamp * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{millis:03d}+0000"


def to_handler(lambda_handler: str) -> str:
    """``app.handler`` -> ``app:handler``; ``src/app.handler`` -> ``src.app:handler``."""
    if not LAMBDA_HANDLER.fullmatch(lambda_handler):
        raise InvalidSpec(
            f"Handler must be 'module.function' (as app.handler), got {lambda_handler!r}"
        )
    module, _, function = lambda_handler.rpartition(".")
    return f"{module.replace('/', '.')}:{function}"


def from_handler(handler: str) -> str:
    return handler.replace(":", ".") if ":" in handler else handler


def config_fields(body: Mapping[str, Any], *, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """The mlambda.toml keys that CreateFunction's or UpdateFunctionConfiguration's fields set;
    a field that would need something not built here is refused rather than dropped."""
    table: dict[str, Any] = {}
    for field, value in body.items():
        if field in ignore or value is None:
            continue
        if field not in _KNOWN:
            raise InvalidSpec(f"{field} is not supported by mlambda's Lambda API")
        if field in _INERT:
            if value not in _INERT[field]:
                allowed = " or ".join(repr(v) for v in _INERT[field])
                raise InvalidSpec(f"{field} {value!r} is not supported here (only {allowed})")
        elif field in _SIMPLE:
            table[_SIMPLE[field]] = _string(field, value)
        elif field == "Handler":
            table["handler"] = _handler(_string(field, value), body.get("Runtime"))
        elif field == "Timeout":
            table["timeout_s"] = _integer(field, value)
        elif field == "MemorySize":
            table["memory_mb"] = _integer(field, value)
        elif field == "EphemeralStorage":
            table["ephemeral_storage_mb"] = _integer("EphemeralStorage.Size", value.get("Size"))
        elif field == "Environment":
            variables = (value or {}).get("Variables") or {}
            if not isinstance(variables, dict) or not all(
                isinstance(v, str) for v in variables.values()
            ):
                raise InvalidSpec("Environment.Variables must map names to strings")
            table["env"] = dict(variables)
    runtime = table.get("runtime")
    if runtime and not is_supported(runtime):
        raise InvalidSpec(f"Runtime {unsupported(runtime)} (this platform runs {PYTHON})")
    return table


def _handler(value: str, runtime: Any) -> str:
    """A provided runtime's Handler is its bootstrap's to read: kept as given. Without a Runtime
    in the same call, a Handler that is not 'module.function' is left to the spec to judge."""
    if runtime is not None and is_provided(runtime):
        return value
    if runtime is None and not LAMBDA_HANDLER.fullmatch(value):
        return value
    return to_handler(value)


def _string(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidSpec(f"{field} must be a string, got {value!r}")
    return value


def _integer(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSpec(f"{field} must be an integer, got {value!r}")
    return value


def function_configuration(
    record: FunctionRecord, region: str, code_size: int, state: str = "Active"
) -> dict[str, Any]:
    """GetFunctionConfiguration's answer for ``record`` ($LATEST or a version)."""
    spec = record.spec
    qualifier = "" if record.version == LATEST else record.version
    shape: dict[str, Any] = {
        "FunctionName": record.name,
        "FunctionArn": function_arn(record.name, qualifier, region),
        "Runtime": spec.runtime or PYTHON,
        "Role": spec.role,
        "Handler": spec.handler if spec.is_provided else from_handler(spec.handler),
        "CodeSize": code_size,
        "Description": spec.description if record.version == LATEST else record.description,
        "Timeout": math.ceil(spec.timeout_s),
        "MemorySize": spec.memory_mb,
        "LastModified": lambda_time(record.updated_at),
        "CodeSha256": record.code_sha256,
        "Version": record.version,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": record.revision_id,
        "State": state,
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": [ARCHITECTURE],
        "EphemeralStorage": {"Size": spec.ephemeral_storage_mb},
    }
    if spec.env:
        shape["Environment"] = {"Variables": dict(spec.env)}
    return shape


def alias_configuration(alias: Alias, region: str) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "AliasArn": function_arn(alias.function, alias.name, region),
        "Name": alias.name,
        "FunctionVersion": alias.routing.version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.routing.weights:
        shape["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.routing.weights)}
    return shape


def routing_weights(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """RoutingConfig.AdditionalVersionWeights, or None when RoutingConfig is absent."""
    config = body.get("RoutingConfig")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise InvalidSpec("RoutingConfig must be an object")
    weights = config.get("AdditionalVersionWeights") or {}
    if not isinstance(weights, dict):
        raise InvalidSpec("RoutingConfig.AdditionalVersionWeights must map versions to weights")
    return weights


_CORS = {
    "AllowOrigins": "allow_origins",
    "AllowMethods": "allow_methods",
    "AllowHeaders": "allow_headers",
    "ExposeHeaders": "expose_headers",
    "MaxAge": "max_age",
    "AllowCredentials": "allow_credentials",
}


def url_table(body: Mapping[str, Any], current: UrlSpec | None) -> dict[str, Any]:
    """``[function.url]`` from Create/UpdateFunctionUrlConfig's AuthType and Cors."""
    mode = body.get("InvokeMode", "BUFFERED")
    if mode != "BUFFERED":
        raise InvalidSpec(f"InvokeMode {mode!r} is not supported here (only 'BUFFERED')")
    auth = body.get("AuthType") or (current.auth_type if current else None)
    if auth not in ("NONE", "AWS_IAM"):
        raise InvalidSpec(f"AuthType must be NONE or AWS_IAM, got {auth!r}")
    table: dict[str, Any] = {"auth_type": auth}
    cors = body.get("Cors")
    if cors is None and current is not None and current.cors is not None:
        cors = cors_shape(current.cors)
    if cors:
        if not isinstance(cors, dict) or not set(cors) <= set(_CORS):
            raise InvalidSpec(f"Cors takes {', '.join(_CORS)}")
        table["cors"] = {_CORS[k]: v for k, v in cors.items()}
    return table


def cors_shape(cors: CorsSpec) -> dict[str, Any]:
    return {field: getattr(cors, key) for field, key in _CORS.items()}


def url_configuration(
    name: str, qualifier: str, url: UrlSpec, base_url: str, region: str, created: float
) -> dict[str, Any]:
    target = f"{name}:{qualifier}" if qualifier else name
    shape: dict[str, Any] = {
        "FunctionUrl": f"{base_url.rstrip('/')}/fn/{target}/",
        "FunctionArn": function_arn(name, qualifier, region),
        # KEY (an mlambda key) is what AWS_IAM (a signed request) means here.
        "AuthType": "NONE" if url.public else "AWS_IAM",
        "CreationTime": lambda_time(created),
        "LastModifiedTime": lambda_time(created),
        "InvokeMode": "BUFFERED",
    }
    if url.cors is not None:
        shape["Cors"] = cors_shape(url.cors)
    return shape
