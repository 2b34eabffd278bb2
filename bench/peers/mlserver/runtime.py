"""MLServer custom runtimes: one ``MLModel`` per model kind, chosen by each model-settings.json.

The artefact path comes from ``parameters.uri`` (peer.py passes it as MLSERVER_MODEL_URI); inputs
are decoded and outputs encoded with MLServer's codecs (NumpyCodec, StringCodec).
"""

import joblib
import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class Runtime(MLModel):
    def respond(self, y: np.ndarray) -> InferenceResponse:
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("output", y)]
        )


class Forest(Runtime):
    """m1: a pickled scikit-learn classifier; FP64 [1, 20] in, predict_proba [1, 2] out."""

    async def load(self) -> bool:
        self.forest = joblib.load(await get_model_uri(self.settings))
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        return self.respond(self.forest.predict_proba(NumpyCodec.decode_input(payload.inputs[0])))


class Onnx(Runtime):
    """m2: an ONNX model; FP32 [1, 64] in, probabilities [1, 3] out."""

    async def load(self) -> bool:
        import onnxruntime

        path = await get_model_uri(self.settings)
        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        return self.respond(self.session.run(["probabilities"], {"input": x})[0])


class Encoder(Runtime):
    """m3: a sentence-transformers model directory; BYTES [1] in, embedding [1, 384] out."""

    async def load(self) -> bool:
        from sentence_transformers import SentenceTransformer

        path = await get_model_uri(self.settings)
        self.encoder = SentenceTransformer(path, device="cpu", local_files_only=True)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        return self.respond(self.encoder.encode(StringCodec.decode_input(payload.inputs[0])))
