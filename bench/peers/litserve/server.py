"""LitServe service for one model (MODEL, MODEL_PATH, PORT and WORKERS from the environment)."""

import os

import litserve as ls
import numpy as np

MODEL = os.environ["MODEL"]
MODEL_PATH = os.environ["MODEL_PATH"]
# Inference worker processes on the one CPU "device", each with its own copy of the model.
WORKERS = int(os.environ.get("WORKERS", "1"))


class ModelAPI(ls.LitAPI):
    def setup(self, device):
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

    def decode_request(self, request):
        return request["input"]

    def predict(self, x):
        return self.model(x)

    def encode_response(self, output):
        return {"output": output.tolist()}


if __name__ == "__main__":
    server = ls.LitServer(ModelAPI(), accelerator="cpu", workers_per_device=WORKERS)
    # generate_client_file=False: do not write client.py into the working directory.
    server.run(host="127.0.0.1", port=int(os.environ["PORT"]), generate_client_file=False)
