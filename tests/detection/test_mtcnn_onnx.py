"""MTCNN's bundled ONNX nets against the torch nets they were converted from
(tools/export_mtcnn.py; needs torch and facenet-pytorch's weights, which CI installs)."""

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mien.detection.files import MODEL_FILES, bundled_model_file
from mien.detection.mtcnn import NET_NAMES, MTCNNDetector, load_nets
from mien.errors import MienError

TOOL = Path(__file__).resolve().parents[2] / "tools" / "export_mtcnn.py"


@pytest.fixture(scope="module")
def export_tool():
    pytest.importorskip("torch")
    if importlib.util.find_spec("facenet_pytorch") is None:
        pytest.skip("facenet-pytorch's weights are not installed (pip install --no-deps "
                    "facenet-pytorch==2.6.0)")
    spec = importlib.util.spec_from_file_location("export_mtcnn", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_bundled_files_match_their_checksums():
    for net in NET_NAMES:
        spec = MODEL_FILES[f"mtcnn-{net}"]
        data = bundled_model_file(spec.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == spec.sha256


def test_onnx_nets_give_the_torch_nets_outputs(export_tool):
    ours, theirs = load_nets(), export_tool.torch_nets()
    rng = np.random.default_rng(0)
    for net, shape in (("pnet", (1, 3, 77, 103)), ("rnet", (7, 3, 24, 24)),
                       ("onet", (5, 3, 48, 48))):
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        for a, b in zip(ours[net](x), theirs[net](x), strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_detections_match_the_torch_nets_on_photos(export_tool, shared_data):
    from mien.data.io import read_image

    photos = sorted((shared_data / "detection/genki_szsl/files").glob("*.jpg"))[:12]
    onnx, torch_ = MTCNNDetector(), MTCNNDetector(nets=export_tool.torch_nets())
    for photo in photos:
        image = read_image(photo, "rgb")
        a, b = onnx.detect(image), torch_.detect(image)
        assert len(a) == len(b), photo.name
        for fa, fb in zip(a, b, strict=True):
            assert fa.box.iou(fb.box) > 0.99 and abs(fa.score - fb.score) < 1e-4


def test_the_export_is_reproducible(export_tool, tmp_path):
    done = subprocess.run([sys.executable, str(TOOL), "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for net in NET_NAMES:
        digest = hashlib.sha256((tmp_path / f"mtcnn_{net}.onnx").read_bytes()).hexdigest()
        assert digest == MODEL_FILES[f"mtcnn-{net}"].sha256, net


def test_nothing_to_fetch_for_files_mien_makes(tmp_path):
    from mien.detection.files import fetch_model_file

    with pytest.raises(MienError, match="ships inside mien.*nothing to fetch"):
        fetch_model_file("mtcnn-onet", tmp_path)
