"""Small real classifiers for the pipeline tests (the bundled ones may not exist yet)."""

from __future__ import annotations

import numpy as np

from mien.data.preprocess import Preprocess


class BrightnessClassifier:
    """A real ONNX model run by ONNX Runtime: mean pixel value -> softmax over (dark, bright).
    Deterministic, so a test can recompute its answer from the crop."""

    def __init__(self, path, name="brightness", size=32):
        import onnxruntime as ort

        self.name = name
        self.labels = ("dark", "bright")
        self.preprocess = Preprocess(
            input_size=(size, size), color="rgb", mean=(0.5,) * 3, std=(0.5,) * 3
        )
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.calls: list[int] = []

    def predict_proba(self, images):
        self.calls.append(len(images))
        x = self.preprocess(images)
        return self.session.run(None, {"input": x})[0]

    @staticmethod
    def expected(crop: np.ndarray, size=32) -> np.ndarray:
        """The same answer computed with numpy, from the crop alone."""
        x = Preprocess(input_size=(size, size), color="rgb", mean=(0.5,) * 3, std=(0.5,) * 3)(
            [crop]
        )
        m = x.mean()
        z = np.array([-4.0 * m, 4.0 * m])
        return np.exp(z) / np.exp(z).sum()


def write_brightness_onnx(path) -> None:
    import onnx
    from onnx import TensorProto, helper

    # GlobalAveragePool -> mean of the three channel means -> logits (-4m, 4m) -> softmax.
    w = np.array([[-4.0, 4.0]] * 3, np.float32) / 3.0
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "brightness",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


class CentreClassifier:
    """Whether the eye line of the crop is level: compares the top-left and top-right quarters
    of a 16x16 gray crop. Pure numpy; a second attribute with a different label count."""

    def __init__(self):
        self.name = "symmetry"
        self.labels = ("left", "even", "right")
        self.preprocess = Preprocess(input_size=(16, 16), color="gray")

    def predict_proba(self, images):
        x = self.preprocess(images)[:, 0]
        d = x[:, :8, :8].mean(axis=(1, 2)) - x[:, :8, 8:].mean(axis=(1, 2))
        z = np.stack([d * 4, np.zeros_like(d), -d * 4], axis=1)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
