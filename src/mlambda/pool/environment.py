"""The environment an instance process starts with (pure)."""

from __future__ import annotations

from mlambda.runtime import protocol
from mlambda.spec import FunctionSpec

# Native thread pools sized to the function's `cpu` (one thread by default), so N instances on a
# machine do not oversubscribe its cores; a function may set its own values in [function.env].
THREAD_POOL_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def instance_environment(
    base: dict[str, str], spec: FunctionSpec, version: str, task_root: str, instance_id: str
) -> dict[str, str]:
    env = dict(base)
    env.update({name: str(spec.threads) for name in THREAD_POOL_VARIABLES})
    env.update(
        {
            # The task root is read-only, as Lambda's is: no bytecode caches written there.
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"[{version}]{instance_id}",
            "LAMBDA_TASK_ROOT": task_root,
            "_HANDLER": spec.handler,
        }
    )
    env.update(spec.env)
    return env


def model_config(spec: FunctionSpec) -> protocol.ModelConfig | None:
    """What a model function's instances load (None for a handler function)."""
    if not spec.is_model:
        return None
    return protocol.ModelConfig(
        path=spec.model,
        framework=spec.framework,
        trust_pickle=spec.trust_pickle,
        hooks=spec.handler,
        threads=spec.threads,
    )
