"""Fixtures for the inference tests: tiny real classifiers and scenes made of real photos."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_classifiers import BrightnessClassifier, CentreClassifier, write_brightness_onnx


@pytest.fixture(scope="session")
def brightness_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "brightness.onnx"
    write_brightness_onnx(path)
    return path


@pytest.fixture
def classifiers(brightness_onnx):
    return {"light": BrightnessClassifier(brightness_onnx), "side": CentreClassifier()}


@pytest.fixture
def models_env(shared_models, monkeypatch):
    monkeypatch.setenv("MIEN_MODELS_DIR", str(shared_models))
    return shared_models


@pytest.fixture(scope="session")
def two_faces(shared_data):
    """A real photo with two large frontal faces (VOC 2008_001009, 360x480)."""
    return shared_data / "detection" / "voc_faces" / "2008_001009.jpg"


@pytest.fixture(scope="session")
def group_photo(shared_data):
    return shared_data / "detection" / "voc_faces" / "2008_001322.jpg"


@pytest.fixture(scope="session")
def face_video(tmp_path_factory, two_faces):
    """36 frames at 12 fps: the two-face photo sliding 3 px right and 1 px down per frame."""
    import cv2

    from mien.data.io import read_image

    image = read_image(two_faces)
    h, w = image.shape[:2]
    path = tmp_path_factory.mktemp("video") / "faces.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (w, h))
    assert writer.isOpened()
    for i in range(36):
        shift = np.float32([[1, 0, 3 * i - 50], [0, 1, i - 18]])
        frame = cv2.warpAffine(image, shift, (w, h), borderMode=cv2.BORDER_REPLICATE)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
