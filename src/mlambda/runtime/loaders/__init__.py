"""Built-in model runtimes: which loader serves which file, what it needs, how it forks.

Pure data (stdlib only): the control plane reads it at deploy time to pick a framework, check
that its packages are installed and choose the runtime zygote's preload set; the instance
imports ``mlambda.runtime.loaders.<module>`` to load the model.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os


@dataclasses.dataclass(frozen=True)
class Framework:
    name: str
    # Module under mlambda.runtime.loaders that loads this format.
    module: str
    # `pip install mlambda[extra]` installs what it needs.
    extra: str
    # Import names that must be importable for the loader to work.
    requires: tuple[str, ...]
    # What the runtime zygote imports ahead of any function (shared by all its functions).
    preload: tuple[str, ...]
    # File suffixes (lower case) that mean this framework when `framework` is not given.
    suffixes: tuple[str, ...]
    # A loaded model survives a fork: templates load it once and instances share its pages.
    # Otherwise (native thread pools made at load) the template maps the file and each
    # instance builds the model after its fork.
    fork_safe: bool
    # A call of the loaded model leaves no thread running, so a template may prime it
    # (runtime/priming.py) and still fork.
    primable: bool = True


FRAMEWORKS: dict[str, Framework] = {
    f.name: f
    for f in (
        Framework(
            "sklearn",
            "sklearn",
            "sklearn",
            ("sklearn", "skops"),
            ("numpy", "sklearn"),
            (".skops", ".joblib", ".pkl", ".pickle"),
            True,
        ),
        Framework(
            "xgboost", "xgboost", "xgboost", ("xgboost",), ("numpy", "xgboost"), (".ubj",), True
        ),
        Framework(
            "lightgbm",
            "lightgbm",
            "lightgbm",
            ("lightgbm",),
            ("numpy", "lightgbm"),
            (".txt", ".lgb"),
            True,
        ),
        Framework(
            "onnx",
            "onnx",
            "onnx",
            ("onnxruntime",),
            ("numpy", "onnxruntime"),
            (".onnx", ".ort"),
            False,
        ),
        Framework(
            "pytorch",
            "torch",
            "torch",
            ("torch",),
            ("numpy", "torch"),
            (".pt", ".pt2", ".ts"),
            True,
        ),
        Framework(
            "tflite",
            "tflite",
            "tflite",
            ("ai_edge_litert",),
            ("numpy", "ai_edge_litert.interpreter"),
            (".tflite",),
            False,
        ),
        Framework(
            "sentence-transformers",
            "sentence_transformers",
            "sentence-transformers",
            ("sentence_transformers",),
            ("numpy", "torch", "sentence_transformers"),
            (),
            True,
            # Encoding starts the tokenizer's thread pool, which a fork would lose.
            primable=False,
        ),
    )
}

# Files that mark a directory as a sentence-transformers model.
SENTENCE_TRANSFORMERS_MARKERS = ("config_sentence_transformers.json", "modules.json")
# Formats that unpickle (run code) when loaded: only with trust_pickle = true.
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


# Imported by the runtime zygote only for models of that format: skops.io imports every
# scikit-learn estimator (and torch, where it is installed), seconds a joblib model never needs;
# onnx reads an ONNX model's weights in its template, for its instances to share (where it is
# installed: the loader does without it).
FORMAT_PRELOAD = {".skops": ("skops.io",), ".onnx": ("onnx",)}
# Of those, the ones a loader can do without: preloaded only where they are installed.
OPTIONAL_PRELOAD = frozenset({"onnx"})


def preload(framework: str, model: str) -> tuple[str, ...]:
    """What the runtime zygote imports for a model of ``framework`` stored at ``model``."""
    if framework not in FRAMEWORKS:
        return ()
    wanted = FORMAT_PRELOAD.get(os.path.splitext(model)[1].lower(), ())
    extra = tuple(
        m for m in wanted if m not in OPTIONAL_PRELOAD or importlib.util.find_spec(m) is not None
    )
    return FRAMEWORKS[framework].preload + extra


def detect(path: str, is_dir: bool, files: frozenset[str] = frozenset()) -> str | None:
    """The framework a model path means, or None when the name does not tell.

    ``files`` are the names inside a model directory (relative to it)."""
    if is_dir:
        if any(marker in files for marker in SENTENCE_TRANSFORMERS_MARKERS):
            return "sentence-transformers"
        return None
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".json":
        return "xgboost"  # XGBoost's JSON model; LightGBM saves text (.txt)
    for framework in FRAMEWORKS.values():
        if suffix in framework.suffixes:
            return framework.name
    return None
