"""BentoML: a @bentoml.service class with one @bentoml.api, one model per server."""

from __future__ import annotations

from typing import Any

NAME = "BentoML"
PACKAGES = ["bentoml"]
SETTINGS = "1 worker (workers=1, the default), no batching (batchable=False), torch threads default"


def command(python: str, model: str, model_path: str, port: int) -> list[str]:
    # service.py reads MODEL and MODEL_PATH from the environment set by the runner.
    serve = [python, "-m", "bentoml", "serve", "service:Model", "--do-not-track"]
    return [*serve, "--host", "127.0.0.1", "--port", str(port)]


def request(model: str, example: Any) -> tuple[str, dict[str, Any]]:
    return "/predict", {"input": example}


def answer(model: str, body: Any) -> list[float]:
    return [float(v) for v in body]
