"""sentence-transformers: a model directory (``modules.json`` and its weights) loaded with
``SentenceTransformer`` on the CPU, offline.

Input: ``text``, BYTES [-1] (a list of strings). Output: ``embedding``, FP32 [-1, dim].
"""

from __future__ import annotations

import os

import numpy as np

from mlambda.runtime.protocol import ModelConfig
from mlambda.runtime.tensors import TensorSpec


def load(path: str, config: ModelConfig) -> SentenceModel:
    # Never reach for the network: the model is the directory that was deployed.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import tqdm
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # A progress bar starts tqdm's monitor thread, and a template with a thread running must
    # not be forked: no bars, no monitor, so instances fork from the loaded model.
    tqdm.tqdm.monitor_interval = 0
    transformers_logging.disable_progress_bar()

    return SentenceModel(SentenceTransformer(path, device="cpu", local_files_only=True))


class SentenceModel:
    def __init__(self, model: object) -> None:
        self.model = model
        # Renamed in sentence-transformers 6 (the old name warns); either gives the width.
        get_dimension = getattr(model, "get_embedding_dimension", None) or getattr(
            model, "get_sentence_embedding_dimension", None
        )
        dimension = int(get_dimension() or -1) if get_dimension else -1
        self.inputs = [TensorSpec("text", "BYTES", (-1,))]
        self.outputs = [TensorSpec("embedding", "FP32", (-1, dimension))]
        self.default_outputs = ["embedding"]
        self.proba_output: str | None = None

    def predict(self, inputs: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        texts = [t.decode() if isinstance(t, bytes) else str(t) for t in inputs["text"].tolist()]
        embeddings = self.model.encode(  # type: ignore[attr-defined]
            texts, batch_size=max(1, len(texts)), convert_to_numpy=True, show_progress_bar=False
        )
        return {"embedding": np.asarray(embeddings, dtype=np.float32)}
