"""BentoML: a @bentoml.service class with one @bentoml.api, one model per server.

service.py reads the worker count from WORKERS (set by the runner): ``@bentoml.service(workers=N)``.
"""

from __future__ import annotations

from typing import Any

NAME = "BentoML"
PACKAGES = ["bentoml"]
WORKERS = 1  # @bentoml.service's default
UNIT = ("worker", "workers")


def settings(workers: int) -> str:
    processes = (
        "1 worker (workers=1, the default)"
        if workers == 1
        else f"{workers} workers (workers={workers}: {workers} processes, each loading the model)"
    )
    return f"{processes}, no batching (batchable=False), torch threads default"


def command(
    python: str, model: str, model_path: str, port: int, workers: int = WORKERS
) -> list[str]:
    # service.py reads MODEL, MODEL_PATH and WORKERS from the environment set by the runner.
    serve = [python, "-m", "bentoml", "serve", "service:Model", "--do-not-track"]
    return [*serve, "--host", "127.0.0.1", "--port", str(port)]


def request(model: str, example: Any) -> tuple[str, dict[str, Any]]:
    return "/predict", {"input": example}


def answer(model: str, body: Any) -> list[float]:
    return [float(v) for v in body]
