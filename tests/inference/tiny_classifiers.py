"""Small real classifiers for the pipeline tests (the bundled ones may not exist yet)."""

from __future__ import annotations

import json

import numpy as np

from mien.data.preprocess import Preprocess

BRIGHTNESS_PREPROCESS = Preprocess(
    input_size=(32, 32), color="rgb", mean=(0.5,) * 3, std=(0.5,) * 3
)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class BrightnessClassifier:
    """A real ONNX model run by ONNX Runtime: mean pixel value m -> logits (-4m, 4m) over
    (dark, bright). Deterministic, so a test can recompute its answer from the crop."""

    def __init__(self, path, name="brightness"):
        import onnxruntime as ort

        self.name = name
        self.labels = ("dark", "bright")
        self.preprocess = BRIGHTNESS_PREPROCESS
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.calls: list[int] = []

    def predict_proba(self, images):
        self.calls.append(len(images))
        logits = self.session.run(None, {"input": self.preprocess(images)})[0]
        return _softmax(logits).astype(np.float32)

    @staticmethod
    def expected(crop: np.ndarray) -> np.ndarray:
        """The same answer computed with numpy, from the crop alone."""
        m = BRIGHTNESS_PREPROCESS([crop]).mean()
        return _softmax(np.array([[-4.0 * m, 4.0 * m]]))[0]


def write_brightness_onnx(path) -> None:
    """The model above as an ONNX file carrying mien's metadata, so `load_classifier` reads it."""
    import onnx
    from onnx import TensorProto, helper

    w = np.array([[-4.0, 4.0]] * 3, np.float32) / 3.0  # mean of the channel means, times +-4
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "brightness",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    record = {
        "format": 1, "task": "classify", "arch": "brightness", "num_classes": 2,
        "in_channels": 3, "input_size": [32, 32], "labels": ["dark", "bright"],
        "preprocess": BRIGHTNESS_PREPROCESS.to_dict(), "model_kwargs": {},
    }  # fmt: skip
    helper.set_model_props(model, {"mien": json.dumps(record)})
    onnx.save(model, str(path))


class CentreClassifier:
    """Compares the top-left and top-right quarters of a 16x16 gray crop: (left, even, right).
    Pure numpy; a second attribute with another label count and preprocessing."""

    def __init__(self):
        self.name = "symmetry"
        self.labels = ("left", "even", "right")
        self.preprocess = Preprocess(input_size=(16, 16), color="gray")

    def predict_proba(self, images):
        x = self.preprocess(images)[:, 0]
        d = x[:, :8, :8].mean(axis=(1, 2)) - x[:, :8, 8:].mean(axis=(1, 2))
        return _softmax(np.stack([d * 4, np.zeros_like(d), -d * 4], axis=1)).astype(np.float32)
