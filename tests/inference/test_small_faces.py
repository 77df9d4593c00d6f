"""Issue 16: faces too small for the classifiers to judge get a row with their box, marked
`small`, and no attributes, instead of guesses."""

from __future__ import annotations

import numpy as np
import pytest

from mien.api.schemas import FaceOut
from mien.detection.base import DEFAULT_OPTIONS
from mien.errors import MienError
from mien.inference import Frame, Pipeline
from mien.inference.pipeline import MIN_JUDGED_FACE
from mien.types import Box, Face


class FixedDetector:
    """Two faces per picture: one large, one 10 px wide."""

    name = "fixed"
    options = DEFAULT_OPTIONS

    def detect(self, image):
        return [Face(Box(20, 20, 84, 84), 0.99), Face(Box(100, 100, 110, 112), 0.9)]


@pytest.fixture
def picture():
    return np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)


def test_small_faces_are_kept_marked_and_not_judged(classifiers, picture):
    pipeline = Pipeline(FixedDetector(), classifiers)
    big, small = pipeline.analyze(picture)
    assert set(big.attributes) == {"light", "side"} and not big.small
    assert small.small and small.attributes == {} and small.box == Box(100, 100, 110, 112)
    assert classifiers["light"].calls[-1] == 1  # the small face was never classified
    out = FaceOut.of(small)
    assert out.small and out.attributes == {}


def test_small_face_rows_say_so(classifiers, picture):
    pipeline = Pipeline(FixedDetector(), classifiers)
    [(_, rows)] = list(pipeline.run_frames([Frame("p.png", 0, None, picture)]))
    assert [r.status for r in rows] == ["ok", "small"]
    assert rows[1].face.attributes == {} and rows[1].message.startswith("face 10 px: too small")
    assert str(MIN_JUDGED_FACE) in rows[1].message
    assert rows[0].message is None and rows[0].face.attributes


def test_min_judged_face_zero_judges_every_face(classifiers, picture):
    faces = Pipeline(FixedDetector(), classifiers, min_judged_face=0).analyze(picture)
    assert all(f.attributes and not f.small for f in faces)
    with pytest.raises(MienError, match="min_judged_face"):
        Pipeline(FixedDetector(), classifiers, min_judged_face=-1)
