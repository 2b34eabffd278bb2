"""mlambda: `mlambda serve` with the model deployed as a model function (no code).

Runs from the repository's own environment (.venv, what `make install` builds), not PyPI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

NAME = "mlambda"
PACKAGES: list[str] = []  # the repository itself: see ENVIRONMENT
ENVIRONMENT = "repository .venv"
# The function's max_instances: 4, mlambda's default (spec.py). The equal-resources variant
# runs it with 1, as many processes as a peer runs by default.
WORKERS = 4
UNIT = ("instance", "instances")
SCALE_TO_ZERO = True
SOURCES = {"m1": "m1.joblib", "m2": "m2.onnx", "m3": "model"}
# The forest's answer is its class probabilities, as the other peers return.
PROBA = {"m1": "?proba=1", "m2": "", "m3": ""}


def settings(workers: int) -> str:
    instances = (
        f"defaults: max_instances {workers}"
        if workers == WORKERS
        else f"max_instances = {workers} (default {WORKERS})"
    )
    return (
        f"zygote backend, {instances}, cpu unset (mlambda sizes each instance's native thread "
        "pools), no batching; auth off (the peers have none); M1 from the same joblib file "
        "(trust_pickle = true)"
    )


def function_dir(
    model: str, model_path: str, keep_alive_s: float, max_instances: int = WORKERS
) -> Path:
    """A function directory for the model: a link to the file and an mlambda.toml.

    The function is named after the model (or ``<model>_zero`` for the scale-from-zero copy);
    a max_instances other than the default gets its own directory, the function's name unchanged.
    """
    cache = Path(os.environ.get("MLAMBDA_BENCH_CACHE", Path.home() / ".cache" / "mlambda-bench"))
    name = model if keep_alive_s >= 60 else f"{model}_zero"
    folder = name if max_instances == WORKERS else f"{name}-max{max_instances}"
    directory = cache / "functions" / folder
    directory.mkdir(parents=True, exist_ok=True)
    source = Path(model_path)
    link = directory / SOURCES[model]
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(source)
    (directory / "mlambda.toml").write_text(
        f'[function]\nname = "{name}"\nmodel = "{SOURCES[model]}"\nmemory_mb = 2048\n'
        f"keep_alive_s = {keep_alive_s}\n"
        + (f"max_instances = {max_instances}\n" if max_instances != WORKERS else "")
        # The same joblib file every peer loads (the harness made it): trusted on purpose.
        + ("trust_pickle = true\n" if model == "m1" else "")
    )
    return directory


def command(
    python: str, model: str, model_path: str, port: int, workers: int = WORKERS
) -> list[str]:
    data = Path(os.environ.get("MLAMBDA_BENCH_DATA", "/tmp/mlambda-bench-data")) / str(port)
    return [
        *(python, "-m", "mlambda", "serve", "--port", str(port), "--data-dir", str(data)),
        *("--no-auth", "--log-level", "warning"),
        *("--deploy", str(function_dir(model, model_path, 300, workers))),
    ]


def prepare_zero(url: str, model: str, model_path: str) -> None:
    """Deploy the same model with keep_alive_s = 1, for the scale-from-zero measurement."""
    from mlambda import bundle
    from mlambda.client import Client

    client = Client(url, None)
    try:
        client.deploy(f"{model}_zero", bundle.pack(function_dir(model, model_path, 1)))
    finally:
        client.close()


def request(model: str, example: Any) -> tuple[str, dict[str, Any]]:
    return f"/v1/functions/{model}/invoke{PROBA[model]}", {"inputs": [example]}


def answer(model: str, body: Any) -> list[float]:
    return list(body["outputs"][0])


def zero_request(model: str, example: Any) -> tuple[str, dict[str, Any]]:
    """The same model with keep_alive_s = 1: idle for a second, it is at zero instances."""
    return f"/v1/functions/{model}_zero/invoke{PROBA[model]}", {"inputs": [example]}


def instances(model: str, processes: list[dict[str, Any]]) -> int:
    return sum(1 for p in processes if p["kind"] == "instance" and p["function"] == f"{model}_zero")
