"""The environment an instance starts with: Lambda's variables, the function's own, nothing else."""

from __future__ import annotations

import pytest

from mlambda.pool.environment import instance_environment, lambda_handler_name
from mlambda.spec import FunctionSpec

SPEC = FunctionSpec(name="fraud", handler="app:handler", memory_mb=512, env={"THRESHOLD": "0.7"})


def _env(base: dict[str, str] | None = None, spec: FunctionSpec = SPEC, **kw: str) -> dict:
    return instance_environment(base or {}, spec, "$LATEST", "/srv/task", "i-1", **kw)


@pytest.mark.parametrize(
    ("handler", "shown"),
    [
        ("app:handler", "app.handler"),
        ("pkg.mod:run", "pkg.mod.run"),
        ("app.handler", "app.handler"),
    ],
)
def test_handler_is_named_as_lambda_names_it(handler, shown):
    assert lambda_handler_name(handler) == shown


def test_region_comes_from_the_platform_and_lambda_defaults_are_set():
    env = _env(region="eu-west-1")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
    assert env["TZ"] == ":UTC"
    assert env["LAMBDA_TASK_ROOT"] == "/srv/task"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].endswith("/[$LATEST]i-1")
    assert env["THRESHOLD"] == "0.7"


def test_tz_from_the_operator_or_the_function_wins_over_lambdas_default():
    assert _env({"TZ": "Europe/Paris"})["TZ"] == "Europe/Paris"
    spec = FunctionSpec(name="f", handler="app:handler", env={"TZ": "Asia/Tokyo"})
    assert _env({"TZ": "Europe/Paris"}, spec)["TZ"] == "Asia/Tokyo"
