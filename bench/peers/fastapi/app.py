"""The "Lambda container" baseline: one model behind a hand-written FastAPI app on uvicorn.

MODEL (m1, m2 or m3) and MODEL_PATH choose the model; it is loaded at import, before the first
request, as a container's handler module would.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

MODEL = os.environ["MODEL"]
PATH = os.environ["MODEL_PATH"]


def _load() -> Any:
    if MODEL == "m1":
        import joblib

        forest = joblib.load(PATH)
        return lambda x: forest.predict_proba([x])[0].tolist()
    if MODEL == "m2":
        import onnxruntime

        session = onnxruntime.InferenceSession(PATH, providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"input": np.asarray([x], dtype=np.float32)})[0][
            0
        ].tolist()
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(PATH, device="cpu", local_files_only=True)
    return lambda text: encoder.encode([text])[0].tolist()


predict = _load()
app = FastAPI()


class Request(BaseModel):
    inputs: Any


@app.post("/predict")
def infer(request: Request) -> dict[str, Any]:
    # A sync endpoint: FastAPI runs it in its thread pool, as most hand-written apps do.
    return {"outputs": predict(request.inputs)}
