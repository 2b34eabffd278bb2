"""Ray Serve: a ``@serve.deployment`` class (app.py) behind Serve's HTTP proxy on 127.0.0.1.

app.py starts a private local Ray node (``ray.init(address="local")``, no dashboard), so parallel
servers never share a cluster; killing the process group takes the raylet and GCS with it. It
reads the replica count from WORKERS (set by the runner): ``num_replicas=N``, each replica
reserving num_cpus = min(1, cores / N) so that N fit on the node.

Scale to zero (``command_scale_to_zero``): the deployment starts with no replica and goes back to
none after about 40 s without requests (look_back_period_s 30 s default + downscale_delay_s 10 s);
the controller logs "Downscaling ... from 1 to 0 replicas", and no ``ray::ServeReplica`` process
is left in the session. A request from zero waits for the handle's metrics push (every 10 s by
default, RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S) plus the replica's start.
"""

from __future__ import annotations

import os
from typing import Any

NAME = "Ray Serve"
PACKAGES = ["ray[serve]"]
WORKERS = 1  # num_replicas' default
UNIT = ("replica", "replicas")
SCALE_TO_ZERO = True
# A process whose command line has this is a running replica: none left means zero replicas.
ZERO_MARKER = "ServeReplica"


def settings(workers: int) -> str:
    if workers == 1:
        replicas = "1 replica (num_cpus=1, so Ray sets OMP_NUM_THREADS=1 in it)"
    else:
        cpus = min(1.0, (os.cpu_count() or 1) / workers)
        replicas = (
            f"{workers} replicas (num_replicas={workers}, num_cpus={cpus:g} each so that they fit "
            f"on {os.cpu_count()} cores; Ray sets OMP_NUM_THREADS=1 in each)"
        )
    return (
        f"{replicas}, no batching, max_ongoing_requests=5 (default) per replica, "
        "local Ray node without dashboard"
    )


def command(
    python: str, model: str, model_path: str, port: int, workers: int = WORKERS
) -> list[str]:
    # app.py reads MODEL, MODEL_PATH, PORT and WORKERS from the environment set by the runner.
    return [python, "app.py"]


def command_scale_to_zero(
    python: str, model: str, model_path: str, port: int, workers: int = WORKERS
) -> list[str]:
    """min_replicas=initial_replicas=0, max_replicas=1, upscale_delay_s=0, downscale_delay_s=10."""
    return [python, "app.py", "--scale-to-zero"]


def request(model: str, example: Any) -> tuple[str, dict]:
    return "/", {"input": example}


def answer(model: str, body: Any) -> list[float]:
    return [float(v) for v in body["output"]]
