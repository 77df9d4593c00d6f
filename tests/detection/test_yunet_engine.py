"""YuNet on ONNX Runtime (issue 22) against OpenCV's FaceDetectorYN, the engine it replaced:
the same network, padding and decoding must give the same faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mien.data.io import read_image
from mien.detection import create_detector
from mien.detection.yunet import any_input_size
from mien.errors import ModelFileError


def _opencv_rows(detector, bgr: np.ndarray, scale: float) -> np.ndarray:
    """FaceDetectorYN's rows for `bgr` at `scale`, in the photo's pixels, as mien ran it before."""
    h, w = bgr.shape[:2]
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    if (sw, sh) != (w, h):
        bgr = cv2.resize(bgr, (sw, sh),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    yunet = cv2.FaceDetectorYN.create(str(detector.model_path), "", (sw, sh), detector.threshold,
                                      detector.options.nms_iou, detector.top_k)
    _, raw = yunet.detect(bgr)
    raw = np.zeros((0, 15)) if raw is None else raw.astype(np.float64)
    return raw * np.r_[np.tile([w / sw, h / sh], 7), 1.0]


def test_same_rows_as_opencv_on_group_photos_and_portraits(voc, genki):
    detector = create_detector("yunet")
    # VOC photos of 375 to 500 px at their size, GENKI portraits upscaled and as they are.
    photos = [read_image(p) for p, _ in voc + genki[:20]]
    assert {len(detector.scales(*p.shape[:2])) for p in photos} == {1}
    found = 0
    for rgb in photos:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        for scale in (*detector.scales(*rgb.shape[:2]), 0.5, 1.7):
            ours, theirs = detector._detect_at(rgb, scale), _opencv_rows(detector, bgr, scale)
            assert ours.shape == theirs.shape
            np.testing.assert_allclose(ours, theirs, atol=1e-3)  # float32 vs float64 sums
            found += len(ours)
    assert found > 60


def test_any_input_size_needs_the_file_it_knows():
    with pytest.raises(ModelFileError, match="1x3x640x640 input"):
        any_input_size(b"not an onnx file")


def test_detectors_share_one_session_per_thread_count(shared_data):
    """A server builds a detector per worker thread and option set; each session keeps a
    memory arena as large as the largest tile it ran, so they share one."""
    image = read_image(shared_data / "detection" / "voc_faces" / "2008_001009.jpg")
    a = create_detector("yunet", threads=1, score_threshold=0.6)
    b = create_detector("yunet", threads=1, score_threshold=0.9, max_faces=1)
    c = create_detector("yunet", threads=2)
    assert a._session is b._session and a._session is not c._session
    assert len(b.detect(image)) == 1 <= len(a.detect(image))  # options still their own
