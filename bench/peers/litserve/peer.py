"""LitServe: a LitAPI served by LitServer, one model per server.

server.py reads the worker count from WORKERS (set by the runner):
``LitServer(..., workers_per_device=N)`` on the CPU, which counts as one device; the number of
API server processes (num_api_servers) follows, by default, the number of inference workers.
"""

from __future__ import annotations

from typing import Any

NAME = "LitServe"
PACKAGES = ["litserve"]
WORKERS = 1  # workers_per_device's default
UNIT = ("worker", "workers")


def settings(workers: int) -> str:
    # num_api_servers is left to its default: as many API server processes as inference workers.
    plural = "s" if workers > 1 else ""
    return (
        f"{workers} inference worker{plural} (workers_per_device={workers}) + {workers} API "
        f"server{plural} (num_api_servers default), accelerator cpu, no batching "
        "(max_batch_size=1), torch threads default"
    )


def command(
    python: str, model: str, model_path: str, port: int, workers: int = WORKERS
) -> list[str]:
    # server.py reads MODEL, MODEL_PATH, PORT and WORKERS from the environment set by the runner.
    return [python, "server.py"]


def request(model: str, example: Any) -> tuple[str, dict[str, Any]]:
    return "/predict", {"input": example}


def answer(model: str, body: Any) -> list[float]:
    return [float(v) for v in body["output"]]
