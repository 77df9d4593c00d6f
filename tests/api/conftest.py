"""Fixtures for the API tests: apps built with small injected classifiers (the bundled ones
may not exist), real face photos, and bad uploads made on the spot."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from mien.data.preprocess import Preprocess  # noqa: E402


class ToneClassifier:
    """A deterministic classifier: the mean gray level m of the 24x24 crop in [0, 1] ->
    probabilities (1 - m, m) over (dark, light). Tests recompute it from the crop."""

    def __init__(self):
        self.name = "tone"
        self.labels = ("dark", "light")
        self.preprocess = Preprocess(input_size=(24, 24), color="gray")
        self.calls: list[int] = []

    def predict_proba(self, images):
        self.calls.append(len(images))
        m = self.preprocess(images).reshape(len(images), -1).mean(axis=1).clip(0, 1)
        return np.stack([1 - m, m], axis=1).astype(np.float32)


class BlockingClassifier(ToneClassifier):
    """Waits inside predict_proba until released: a request that is provably still running."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def predict_proba(self, images):
        self.entered.set()
        assert self.release.wait(30), "test never released the classifier"
        return super().predict_proba(images)


@pytest.fixture(scope="session")
def face_photo(shared_data):
    """A GENKI portrait: one face, 179x192."""
    return (shared_data / "detection" / "genki_szsl" / "files" / "file0001.jpg").read_bytes()


@pytest.fixture(scope="session")
def two_faces(shared_data):
    """VOC 2008_001009: two large frontal faces, 360x480."""
    return (shared_data / "detection" / "voc_faces" / "2008_001009.jpg").read_bytes()


@pytest.fixture
def make_app():
    """create_app with Haar (always installed) and the tone classifier unless told otherwise;
    the services are closed at the end."""
    from mien.api import Settings, create_app

    apps = []

    def make(classifiers=None, **settings):
        settings.setdefault("detector", "haar")
        settings.setdefault("workers", 2)
        app = create_app(Settings(**settings), classifiers=(
            {"tone": ToneClassifier()} if classifiers is None else classifiers))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.service.close()


@pytest.fixture
def client(make_app):
    from fastapi.testclient import TestClient

    return TestClient(make_app())


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def write_mean_onnx(path) -> None:
    """A real ONNX classifier with mien's metadata: mean gray level of an 8x8 crop ->
    (low, high), for `load_classifier` and `mien serve --attributes`."""
    import json

    import onnx
    from onnx import TensorProto, helper

    pre = {"input_size": [8, 8], "color": "gray", "equalize": "none", "mean": [0.0],
           "std": [1.0]}
    w = np.array([[-1.0, 1.0]], np.float32)
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["p"]),
         helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
        "mean", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    record = {"format": 1, "task": "classify", "arch": "mean-test", "num_classes": 2,
              "in_channels": 1, "input_size": [8, 8], "labels": ["low", "high"],
              "preprocess": pre, "model_kwargs": {}}
    helper.set_model_props(model, {"mien": json.dumps(record)})
    onnx.save(model, str(path))
