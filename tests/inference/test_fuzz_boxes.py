"""Property tests of the box code: whatever boxes and landmarks a detector (mien's or another)
hands over, inverted, outside the picture, empty, huge or not finite, on pictures down to 1x1,
detection keeps only boxes with pixels inside the picture, and cropping, caption layout and
drawing neither fail nor change the picture's shape."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mien.detection.base import DetectorOptions, to_faces
from mien.errors import MienError
from mien.inference.align import crop_face
from mien.inference.draw import draw_faces
from mien.inference.labels import place_captions
from mien.types import Box, Face, Prediction

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ODD = [0.0, -0.0, 0.5, -1.0, 1e12, -1e12, math.nan, math.inf, -math.inf]
# Mostly near the picture, sometimes far off it or not a number at all.
coords = st.one_of(st.floats(-40, 120), st.sampled_from(ODD))
finite_coords = st.one_of(st.floats(-40, 120), st.sampled_from([0.0, 0.5, -1.0, 1e6, -1e6]))


def boxes(values=coords):
    return st.builds(Box, values, values, values, values)


def landmarks(values=coords):
    return st.one_of(st.just(()), st.lists(st.tuples(values, values), min_size=1, max_size=5)
                     .map(tuple))


prediction = st.builds(lambda label, p: Prediction(label, p, {label: p}),
                       st.sampled_from(["happy", "smile", "no_eyeglasses", "uncertain"]),
                       st.floats(0, 1))


def faces(values=coords):
    return st.builds(Face, boxes(values), st.floats(0, 1), landmarks(values),
                     st.dictionaries(st.sampled_from(["expression", "smile", "glasses"]),
                                     prediction, max_size=3),
                     st.one_of(st.none(), st.integers(0, 10**6)))


@st.composite
def images(draw, channels=(None, 3, 4)) -> np.ndarray:
    """uint8 pictures from 1x1 up to 64x64, including 1xN and Nx1; gray (H, W), RGB or RGBA."""
    h, w = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    c = draw(st.sampled_from(channels))
    shape = (h, w) if c is None else (h, w, c)
    fill = draw(st.sampled_from(["noise", "flat"]))
    if fill == "flat":
        return np.full(shape, draw(st.integers(0, 255)), np.uint8)
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def check_crop(crop: np.ndarray, image: np.ndarray, size: int | None) -> None:
    assert crop.dtype == np.uint8
    assert crop.ndim == image.ndim and crop.shape[2:] == image.shape[2:]
    assert crop.shape[0] == crop.shape[1] >= 1
    if size is not None:
        assert crop.shape[0] == size


@st.composite
def detections(draw):
    """What a detector's network gives `to_faces`: (N, 4) boxes, N scores, (N, 5, 2) or no
    landmarks, for a picture of some size."""
    n = draw(st.integers(0, 12))
    box_array = draw(hnp.arrays(np.float64, (n, 4), elements=coords))
    scores = draw(hnp.arrays(np.float64, (n,), elements=st.one_of(
        st.floats(0, 1), st.sampled_from([math.nan, -math.inf, math.inf]))))
    points = draw(st.one_of(st.none(), hnp.arrays(np.float64, (n, 5, 2), elements=coords)))
    return box_array, scores, points


@FUZZ
@given(detections(), images(channels=(3,)), st.integers(1, 30), st.integers(1, 5),
       st.floats(0.05, 1))
# Found by this test: NaN landmarks passed through, to reach crops, drawing and JSON answers.
@example((np.array([[0.0, 0.0, 9.0, 9.0]]), np.array([0.9]), np.full((1, 5, 2), math.nan)),
         np.zeros((9, 9, 3), np.uint8), 1, 1, 0.5)
def test_detected_faces_lie_inside_the_picture_and_crop_and_draw(found, image, min_face,
                                                                 max_faces, threshold):
    box_array, scores, points = found
    options = DetectorOptions(min_face=min_face, max_faces=max_faces)
    kept = to_faces(box_array, scores, points, options, threshold, image.shape)
    h, w = image.shape[:2]
    assert len(kept) <= max_faces
    assert [f.score for f in kept] == sorted((f.score for f in kept), reverse=True)
    for face in kept:
        b = face.box
        assert 0 <= b.x1 < b.x2 <= w and 0 <= b.y1 < b.y2 <= h
        assert b.width >= 1 and b.height >= 1
        assert all(math.isfinite(v) for point in face.landmarks for v in point)
        assert face.score >= threshold  # Haar's scores are no probabilities: no upper bound
        check_crop(crop_face(image, face), image, None)
    assert draw_faces(image, kept).shape == image.shape


def finite(box: Box) -> bool:
    return all(map(math.isfinite, (box.x1, box.y1, box.x2, box.y2)))


NAN_EYES = ((math.nan, 1.0), (3.0, math.inf))


@FUZZ
@given(images(), faces(), st.floats(0, 2), st.one_of(st.none(), st.integers(1, 96)),
       st.booleans())
# Found by this test: an infinite box overflowed round(), a NaN one int(), with a raw error.
@example(np.zeros((1, 1), np.uint8), Face(Box(0, 0, math.inf, 1), 1.0), 0.0, None, False)
@example(np.zeros((1, 1), np.uint8), Face(Box(0, 0, 0, math.nan), 1.0), 0.0, 1, False)
@example(np.zeros((9, 9, 3), np.uint8), Face(Box(1, 1, 8, 8), 1.0, NAN_EYES), 0.2, None, True)
def test_any_face_crops_to_a_square_of_the_pictures_channels(image, face, margin, size, align):
    """Finite boxes always crop (NaN eyes crop unrotated); a NaN or infinite box, which has no
    crop, is refused with mien's one-line error."""
    try:
        crop = crop_face(image, face, margin=margin, size=size, align=align)
    except MienError as exc:
        assert not finite(face.box) and "\n" not in str(exc)
        return
    check_crop(crop, image, size)


SMILE = {"smile": Prediction("smile", 0.9, {"smile": 0.9})}


@FUZZ
@given(images(channels=(3,)), st.lists(faces(), max_size=6))
# Found by this test: Pillow walks every row of a rectangle, so a box 1e12 pixels tall hung the
# drawing; NaN boxes and landmarks raised.
@example(np.zeros((20, 30, 3), np.uint8), [Face(Box(0, 0, 5, 1e12), 1.0, (), SMILE)])
@example(np.zeros((20, 30, 3), np.uint8), [Face(Box(0, -1e12, 5, 5), 1.0, ((1e12, 1),))])
@example(np.zeros((20, 30, 3), np.uint8), [Face(Box(0, 0, math.nan, 5), 1.0, NAN_EYES, SMILE)])
def test_drawing_any_faces_keeps_the_pictures_shape(image, found):
    drawn = draw_faces(image, found)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8


@FUZZ
@given(st.lists(st.tuples(boxes(finite_coords),
                          st.lists(st.text("ab01 ·", min_size=1, max_size=30), min_size=1,
                                   max_size=4)), max_size=8),
       st.integers(1, 400), st.integers(1, 400))
def test_caption_labels_stay_inside_the_picture(captioned, width, height):
    """Labels of any size for any boxes: each lies inside the picture wherever it fits."""
    box_list, parts = [b for b, _ in captioned], [p for _, p in captioned]
    placed = place_captions(box_list, parts, lambda size: lambda text: 0.6 * size * len(text),
                            width, height)
    assert len(placed.rects) == len(placed.lines) == len(box_list)
    for rect in placed.rects:
        assert all(math.isfinite(v) for v in (rect.x1, rect.y1, rect.x2, rect.y2))
        assert rect.x1 >= 0 and rect.y1 >= 0
        # A label wider (or taller) than the picture starts at its edge and sticks out the far
        # side; every other label lies wholly inside.
        assert rect.x2 <= width or rect.x1 == 0
        assert rect.y2 <= height or rect.y1 == 0
