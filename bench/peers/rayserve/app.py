"""Ray Serve peer: one deployment serving the model named by $MODEL, on 127.0.0.1:$PORT.

Run by peer.py as ``python app.py`` (WORKERS replicas, default 1; no batching) or
``python app.py --scale-to-zero`` (autoscaling from zero replicas); blocks until killed.
"""

import os
import sys

import numpy as np
import ray
from ray import serve
from starlette.requests import Request


@serve.deployment
class Model:
    def __init__(self, model: str, path: str) -> None:
        self.model = model
        if model == "m1":
            import joblib

            self.forest = joblib.load(path)
        elif model == "m2":
            import onnxruntime

            self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        else:
            from sentence_transformers import SentenceTransformer

            self.encoder = SentenceTransformer(path, device="cpu", local_files_only=True)

    async def __call__(self, request: Request) -> dict:
        x = (await request.json())["input"]
        if self.model == "m1":
            y = self.forest.predict_proba([x])[0]
        elif self.model == "m2":
            y = self.session.run(["probabilities"], {"input": np.array([x], np.float32)})[0][0]
        else:
            y = self.encoder.encode([x])[0]
        return {"output": y.tolist()}


def main() -> None:
    model, path, port = os.environ["MODEL"], os.environ["MODEL_PATH"], int(os.environ["PORT"])
    workers = int(os.environ.get("WORKERS", "1"))
    deployment = Model
    if workers > 1:
        # Serve reserves one CPU per replica by default: more replicas than the node has CPUs
        # would never be placed, so each gets its share (0.5 for 4 on 2 cores). Ray sets each
        # replica's OMP_NUM_THREADS from its num_cpus (at least 1).
        cpus = min(1.0, (os.cpu_count() or 1) / workers)
        deployment = Model.options(num_replicas=workers, ray_actor_options={"num_cpus": cpus})
    if "--scale-to-zero" in sys.argv:
        deployment = Model.options(
            autoscaling_config={
                "min_replicas": 0,
                "initial_replicas": 0,
                "max_replicas": 1,
                "upscale_delay_s": 0,
                "downscale_delay_s": 10,
            }
        )
    # A private local node (never an existing cluster), no dashboard.
    ray.init(address="local", include_dashboard=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(deployment.bind(model, path), name=model, route_prefix="/", blocking=True)


if __name__ == "__main__":
    main()
