"""LitServe: a LitAPI served by LitServer, one model per server."""

from __future__ import annotations

from typing import Any

NAME = "LitServe"
PACKAGES = ["litserve"]
SETTINGS = (
    "1 inference worker (workers_per_device=1) + 1 API server, accelerator cpu,"
    " no batching (max_batch_size=1), torch threads default"
)


def command(python: str, model: str, model_path: str, port: int) -> list[str]:
    # server.py reads MODEL, MODEL_PATH and PORT from the environment set by the runner.
    return [python, "server.py"]


def request(model: str, example: Any) -> tuple[str, dict[str, Any]]:
    return "/predict", {"input": example}


def answer(model: str, body: Any) -> list[float]:
    return [float(v) for v in body["output"]]
