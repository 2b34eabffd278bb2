"""Seldon MLServer: custom runtimes (runtime.py) started with ``mlserver start <model dir>``.

Each model directory (m1/, m2/, m3/) holds its model-settings.json (name, implementation) and the
server's settings.json (127.0.0.1, gRPC on an ephemeral port, metrics server off). The HTTP port,
the number of inference worker processes and the model's path come from the environment
(MLSERVER_HTTP_PORT, MLSERVER_PARALLEL_WORKERS and MLSERVER_MODEL_URI, which settings.json and
model-settings.json leave unset: a value in the file would win over the environment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NAME = "MLServer"
PACKAGES = ["mlserver", "uvloop<0.22"]
WORKERS = 1  # parallel_workers: 1 is the default
UNIT = ("worker", "workers")
DATATYPES = {"m1": "FP64", "m2": "FP32"}


def settings(workers: int) -> str:
    return (
        f"{workers} inference worker process{'es' if workers > 1 else ''}"
        f" (parallel_workers={workers}) behind 1 HTTP server process, adaptive batching off, "
        "default threads (onnxruntime/torch use both cores), gRPC on an ephemeral port, no metrics"
    )


def command(
    python: str, model: str, model_path: str, port: int, workers: int = WORKERS
) -> list[str]:
    mlserver = str(Path(python).parent / "mlserver")
    env = [
        f"MLSERVER_HTTP_PORT={port}",
        f"MLSERVER_PARALLEL_WORKERS={workers}",
        f"MLSERVER_MODEL_URI={model_path}",
    ]
    return ["env", *env, mlserver, "start", model]


def request(model: str, example: Any) -> tuple[str, dict]:
    if model == "m3":
        tensor = {"name": "input", "shape": [1], "datatype": "BYTES", "data": [example]}
    else:
        shape = [1, len(example)]
        tensor = {"name": "input", "shape": shape, "datatype": DATATYPES[model], "data": example}
    return f"/v2/models/{model}/infer", {"inputs": [tensor]}


def answer(model: str, body: Any) -> list[float]:
    return [float(v) for v in body["outputs"][0]["data"]]
