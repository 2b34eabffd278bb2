"""FastAPI + uvicorn: a hand-written app per model, the "Lambda container" baseline."""

from __future__ import annotations

from typing import Any

NAME = "FastAPI"
PACKAGES = ["fastapi", "uvicorn"]
SETTINGS = "1 uvicorn worker, sync endpoint (thread pool), no batching, library thread defaults"


def command(python: str, model: str, model_path: str, port: int) -> list[str]:
    return [python, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]


def request(model: str, example: Any) -> tuple[str, dict[str, Any]]:
    return "/predict", {"inputs": example}


def answer(model: str, body: Any) -> list[float]:
    return list(body["outputs"])
