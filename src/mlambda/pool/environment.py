"""The environment an instance process starts with (pure)."""

from __future__ import annotations

import os
import sys

import mlambda.runtime
from mlambda.runtime import protocol
from mlambda.runtime.context import log_stream_name
from mlambda.runtime.threads import THREAD_POOL_VARIABLES
from mlambda.runtime.worker import BOOTSTRAP_VARIABLE
from mlambda.runtimes import BOOTSTRAP
from mlambda.spec import FunctionSpec

# What the Lambda Python runtime names itself and where its Runtime API listens. Python functions
# here are driven by the platform's own protocol; the address is set as Lambda sets it, for code
# that only reads it (docs/lambda.md). A provided runtime's bootstrap is given the address its
# own instance serves the Runtime API at (runtime/provided.py).
EXECUTION_ENV = f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}"
RUNTIME_API = "127.0.0.1:9001"
RUNTIME_DIR = os.path.dirname(mlambda.runtime.__file__)


def lambda_handler_name(handler: str) -> str:
    """``_HANDLER`` as Lambda spells it: ``app:handler`` -> ``app.handler``."""
    module, sep, function = handler.partition(":")
    return f"{module}.{function}" if sep else handler


def instance_environment(
    base: dict[str, str],
    spec: FunctionSpec,
    version: str,
    task_root: str,
    instance_id: str,
    region: str = "us-east-1",
    threads: int = 1,
) -> dict[str, str]:
    # TZ is Lambda's default, which a function (or the operator's environment) may override.
    env = {"TZ": ":UTC", **base}
    # Libraries imported after this (in a fresh process, or by init after a fork) size their pools
    # from these; pool/threads.py decides the number.
    env.update({name: str(threads) for name in THREAD_POOL_VARIABLES})
    env.update(
        {
            # The task root is read-only, as Lambda's is: no bytecode caches written there.
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name(version, instance_id),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_RUNTIME_API": RUNTIME_API,
            "AWS_EXECUTION_ENV": EXECUTION_ENV,
            # A boto3 client made in a handler finds its region, as on Lambda.
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": RUNTIME_DIR,
            "_HANDLER": _handler(spec),
        }
    )
    env.update(spec.env)
    if spec.is_provided:
        # Lambda names no execution environment for its OS-only (provided) runtimes.
        del env["AWS_EXECUTION_ENV"]
        env[BOOTSTRAP_VARIABLE] = os.path.join(task_root, BOOTSTRAP)
    return env


def _handler(spec: FunctionSpec) -> str:
    """``_HANDLER``: Lambda's spelling of a Python handler; a provided runtime's as given."""
    if spec.is_model or spec.is_provided:
        return spec.handler
    return lambda_handler_name(spec.handler)


def model_config(spec: FunctionSpec, threads: int = 1) -> protocol.ModelConfig | None:
    """What a model function's instances load (None for a handler function)."""
    if not spec.is_model:
        return None
    return protocol.ModelConfig(
        path=spec.model,
        framework=spec.framework,
        trust_pickle=spec.trust_pickle,
        hooks=spec.handler,
        threads=threads,
    )
