"""Robust boxes: clipped to the picture, empty ones dropped, at most `max_faces`, the score
threshold bounded, empty detector outputs answered with no face (issue 16's three crashes)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mien.detection import MIN_SCORE_THRESHOLD, DetectorOptions, create_detector
from mien.detection.base import to_faces
from mien.errors import MienError
from mien.inference.draw import draw_faces
from mien.inference.pipeline import Pipeline
from mien.types import Box, Face, Prediction

OPTIONS = DetectorOptions(min_face=1)


@pytest.fixture(scope="session")
def genki_photo(shared_data):
    """GENKI-SZSL file0001: one face, 179x192; YuNet at threshold 0 put boxes outside it."""
    from mien.data.io import read_image

    return read_image(shared_data / "detection" / "genki_szsl" / "files" / "file0001.jpg")


@pytest.fixture(scope="session")
def noise():
    return np.random.default_rng(16).integers(0, 256, (640, 640, 3), dtype=np.uint8)


def _assert_inside(faces, shape):
    h, w = shape[:2]
    for f in faces:
        b = f.box
        assert 0 <= b.x1 < b.x2 <= w and 0 <= b.y1 < b.y2 <= h, b
        assert b.x2 - b.x1 >= 1 and b.y2 - b.y1 >= 1, b


def test_boxes_are_clipped_and_empty_ones_dropped():
    boxes = np.array([
        [-10, -5, 40, 50],      # over the top-left corner: clipped
        [90, 20, 130, 60],      # over the right edge: clipped
        [120, 10, 160, 50],     # wholly right of the picture: x1 > x2 once clipped
        [30, -60, 60, -20],     # wholly above it
        [50, 50, 40, 80],       # inverted
        [99.5, 70, 140, 90],    # half a pixel inside: nothing to crop
        [np.nan, 0, 10, 10],    # not a number
    ], float)
    scores = np.linspace(0.9, 0.3, len(boxes))
    landmarks = np.zeros((len(boxes), 5, 2))
    faces = to_faces(boxes, scores, landmarks, OPTIONS, 0.0, (80, 100, 3))
    assert [(f.box.x1, f.box.y1, f.box.x2, f.box.y2) for f in faces] == [
        (0, 0, 40, 50), (90, 20, 100, 60)]
    assert all(len(f.landmarks) == 5 for f in faces)


def test_empty_detector_outputs_give_no_face():
    # MTCNN's O-Net keeping no candidate handed these over: "cannot reshape array of size 0".
    assert to_faces(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)), OPTIONS, 0.5,
                    (10, 10)) == []
    assert to_faces(np.zeros((0, 4)), np.zeros(0), None, OPTIONS, 0.5, (10, 10)) == []


def test_max_faces_keeps_the_best_scores():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 900, (500, 2))
    boxes = np.c_[corners, corners + 30]
    scores = rng.uniform(0.1, 1.0, 500)
    every = to_faces(boxes, scores, None, DetectorOptions(1, nms_iou=1.0, max_faces=1000), 0.0,
                     (1000, 1000))
    best = to_faces(boxes, scores, None, DetectorOptions(1, nms_iou=1.0, max_faces=7), 0.0,
                    (1000, 1000))
    assert len(every) == 500 and best == every[:7]


@pytest.mark.parametrize("options, message", [
    (dict(score_threshold=0.0), "score threshold 0.0: use a value in [0.05, 1]"),
    (dict(score_threshold=0.049), "score threshold 0.049"),
    (dict(score_threshold=1.5), "score threshold 1.5"),
    (dict(max_faces=0), "max_faces=0"),
    (dict(min_face=0), "min_face=0"),
    (dict(nms_iou=0.0), "nms_iou=0.0"),
])
def test_out_of_bounds_options_fail_with_one_line(options, message):
    for build in (lambda: create_detector("haar", **options),
                  lambda: Pipeline("haar", {}, detector_options=options)):
        with pytest.raises(MienError) as exc:
            build()
        assert message in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("name", ["yunet", "haar"])
def test_lowest_threshold_on_a_photo_gives_boxes_inside_it(name, genki_photo):
    detector = create_detector(name, min_face=1, score_threshold=MIN_SCORE_THRESHOLD)
    faces = detector.detect(genki_photo)
    assert faces
    _assert_inside(faces, genki_photo.shape)
    assert draw_faces(genki_photo, faces).shape == genki_photo.shape


def test_yunet_at_threshold_zero_gives_no_box_outside_the_photo(genki_photo):
    """The crash of `--threshold 0 --min-face 1 --annotate`: YuNet itself, asked for every
    score, returns boxes wholly outside this photo; none may come out of the detector."""
    detector = create_detector("yunet", min_face=1, score_threshold=MIN_SCORE_THRESHOLD)
    detector.threshold = 0.0  # below the public bound, on purpose
    faces = detector.detect(genki_photo)
    assert len(faces) > 20  # many weak boxes, some of them partly outside before clipping
    _assert_inside(faces, genki_photo.shape)
    assert draw_faces(genki_photo, faces).shape == genki_photo.shape


def test_noise_at_the_lowest_threshold_is_bounded_and_quick(noise):
    full = create_detector("yunet", min_face=1, score_threshold=MIN_SCORE_THRESHOLD)
    full.detect(noise)  # warm up
    start = time.perf_counter()
    faces = full.detect(noise)
    elapsed = time.perf_counter() - start
    assert 0 < len(faces) <= full.options.max_faces == 200
    assert elapsed < 2.0, elapsed  # about 40 ms on one core; thousands of faces took seconds
    capped = create_detector("yunet", min_face=1, score_threshold=MIN_SCORE_THRESHOLD,
                             max_faces=10)
    assert capped.detect(noise) == faces[:10]


def test_mtcnn_whose_last_stage_keeps_nothing_finds_no_face():
    """O-Net rejecting every candidate used to abort the batch in `to_faces`."""
    from mien.detection.mtcnn import MTCNNDetector

    def pnet(x):  # a face candidate in every cell
        h, w = (x.shape[2] - 10) // 2 + 1, (x.shape[3] - 10) // 2 + 1
        return [np.full((1, h, w), 0.9, np.float32), np.zeros((1, 4, h, w), np.float32)]

    def rnet(x):
        return [np.full((len(x),), 0.9, np.float32), np.zeros((len(x), 4), np.float32)]

    def onet(x):  # ... and none left after the last stage
        return [np.full((len(x),), 0.1, np.float32), np.zeros((len(x), 4), np.float32),
                np.zeros((len(x), 10), np.float32)]

    detector = MTCNNDetector(DetectorOptions(min_face=1),
                             nets={"pnet": pnet, "rnet": rnet, "onet": onet})
    image = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    assert detector.detect(image) == []


def test_drawing_survives_degenerate_boxes():
    """Boxes from a detector of the caller's own: inverted, thinner than a pixel, outside."""
    image = np.full((30, 40, 3), 60, np.uint8)
    smile = Prediction("smile", 0.8, {"no_smile": 0.2, "smile": 0.8})
    boxes = [Box(41.2, 5, 40, 20), Box(10, 12, 10.4, 12.3), Box(-8, -9, -1, -2),
             Box(5, 25, 35, 29), Box(0, 0, 40, 30)]
    out = draw_faces(image, [Face(b, 0.5, ((100.0, -50.0),), {"smile": smile}) for b in boxes])
    assert out.shape == image.shape and (out != 60).any()
