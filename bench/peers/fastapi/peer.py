"""FastAPI + uvicorn: a hand-written app per model, the "Lambda container" baseline."""

from __future__ import annotations

from typing import Any

NAME = "FastAPI"
PACKAGES = ["fastapi", "uvicorn"]
WORKERS = 1  # uvicorn's default: one process
UNIT = ("worker", "workers")


def settings(workers: int) -> str:
    processes = (
        "1 uvicorn worker"
        if workers == 1
        else f"{workers} uvicorn workers (--workers {workers}: a supervisor and {workers} processes"
        ", each loading the model)"
    )
    return f"{processes}, sync endpoint (thread pool), no batching, library thread defaults"


def command(
    python: str, model: str, model_path: str, port: int, workers: int = WORKERS
) -> list[str]:
    argv = [python, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
    # --workers 1 runs the same single process; the flag only where more are asked for.
    return argv + (["--workers", str(workers)] if workers > 1 else [])


def request(model: str, example: Any) -> tuple[str, dict[str, Any]]:
    return "/predict", {"inputs": example}


def answer(model: str, body: Any) -> list[float]:
    return list(body["outputs"])
