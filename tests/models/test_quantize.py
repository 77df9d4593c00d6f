"""tools/quantize_bundled.py: int8 copies of bundled networks, reproducible, close to the float
file; the cards of the int8 files say what they were made from."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mien.models.cards import read_card, weights_dir
from mien.models.loading import OnnxClassifier, sha256_of

TOOL = Path(__file__).resolve().parents[2] / "tools" / "quantize_bundled.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("quantize_bundled", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_int8_files_are_reproducible_and_agree_with_the_float_one(tool, shared_data, tmp_path):
    card = read_card("glasses")  # still a float file: the source
    source = weights_dir() / card["file"]
    float_net = OnnxClassifier(source, name="glasses")
    images = tool.calibration_images(card, shared_data, 24, seed=0)
    assert len(images) == 24 and images[0].shape == (64, 64, 3)
    held = {Path(f).name for f in card["split"]["val_files"]}
    assert held and not held & {p.name for p in tool.calibration_files(card, shared_data, 500, 0)}
    again = tool.calibration_images(card, shared_data, 24, seed=0)
    assert all((a == b).all() for a, b in zip(images, again, strict=True))
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    tool.quantize(source, a, float_net.preprocess, images)
    tool.quantize(source, b, float_net.preprocess, images)
    assert a.read_bytes() == b.read_bytes()
    assert a.stat().st_size < source.stat().st_size / 2
    int8 = OnnxClassifier(a, name="glasses")
    assert int8.record == float_net.record  # labels, preprocessing, framing, temperature kept
    faces = tool.calibration_images(card, shared_data, 64, seed=1)
    p, q = float_net.predict_proba(faces), int8.predict_proba(faces)
    assert np.abs(p - q).max() < 0.1 and (p.argmax(1) == q.argmax(1)).mean() >= 0.95


@pytest.mark.parametrize("name", ["expression", "smile"])
def test_cards_of_int8_files_record_their_float_source(name):
    card = read_card(name)
    q = card["quantization"]
    assert q["float_sha256"] != card["sha256"] == sha256_of(weights_dir() / card["file"])
    assert "int8" in q["method"] and q["command"].startswith("python tools/quantize_bundled.py")
    for key in ("accuracy", "balanced_accuracy"):  # within the tool's 0.3-point tolerance
        assert card["validation"][key] >= q["float_validation"][key] - 0.003
    assert json.dumps(card)  # a plain JSON card
