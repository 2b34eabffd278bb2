"""Ray Serve: a ``@serve.deployment`` class (app.py) behind Serve's HTTP proxy on 127.0.0.1."""

from __future__ import annotations

from typing import Any

NAME = "Ray Serve"
PACKAGES = ["ray[serve]"]
SETTINGS = (
    "1 replica (num_cpus=1, so Ray sets OMP_NUM_THREADS=1 in it), no batching, "
    "max_ongoing_requests=5 (default), local Ray node without dashboard"
)
SCALE_TO_ZERO = True


def command(python: str, model: str, model_path: str, port: int) -> list[str]:
    return [python, "app.py"]


def command_scale_to_zero(python: str, model: str, model_path: str, port: int) -> list[str]:
    """min_replicas=initial_replicas=0, max_replicas=1, upscale_delay_s=0, downscale_delay_s=10."""
    return [python, "app.py", "--scale-to-zero"]


def request(model: str, example: Any) -> tuple[str, dict]:
    return "/", {"input": example}


def answer(model: str, body: Any) -> list[float]:
    return [float(v) for v in body["output"]]
