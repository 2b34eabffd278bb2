"""BentoML service for one model (MODEL, MODEL_PATH and WORKERS from the environment)."""

import os

import bentoml
import numpy as np

MODEL = os.environ["MODEL"]
MODEL_PATH = os.environ["MODEL_PATH"]
# Worker processes, each with its own copy of the model (1: BentoML's default).
WORKERS = int(os.environ.get("WORKERS", "1"))


@bentoml.service(workers=WORKERS)
class Model:
    def __init__(self) -> None:
        if MODEL == "m1":
            import joblib

            forest = joblib.load(MODEL_PATH)
            self.model = lambda x: forest.predict_proba([x])[0]
        elif MODEL == "m2":
            import onnxruntime

            session = onnxruntime.InferenceSession(MODEL_PATH, providers=["CPUExecutionProvider"])
            self.model = lambda x: session.run(
                ["probabilities"], {"input": np.asarray([x], dtype=np.float32)}
            )[0][0]
        else:
            from sentence_transformers import SentenceTransformer

            encoder = SentenceTransformer(MODEL_PATH, device="cpu", local_files_only=True)
            self.model = lambda text: encoder.encode([text])[0]

    @bentoml.api
    def predict(self, input: list[float] | str) -> list[float]:
        return self.model(input).tolist()
