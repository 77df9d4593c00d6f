from __future__ import annotations

import numpy as np

from mien.inference.draw import caption_parts, draw_faces
from mien.inference.labels import SEPARATOR
from mien.types import Box, Face, Prediction


def _face(**attrs) -> Face:
    return Face(Box(20, 30, 80, 100), 0.9, (), attrs)


def caption(face: Face) -> str:
    return SEPARATOR.join(caption_parts(face))


def test_caption_shows_every_attribute_as_its_winning_label_and_probability():
    face = _face(
        expression=Prediction("happy", 0.93, {"happy": 0.93, "sad": 0.07}),
        smile=Prediction("no_smile", 0.62, {"no_smile": 0.62, "smile": 0.38}),
        glasses=Prediction("no_eyeglasses", 0.98, {"no_eyeglasses": 0.98, "eyeglasses": 0.02}),
    )
    assert caption(face) == "happy 0.93 · no_smile 0.62 · no_eyeglasses 0.98"
    tracked = Face(face.box, 0.9, (), {"smile": face.attributes["smile"]}, track_id=3)
    assert caption_parts(tracked) == ["#3 no_smile 0.62"]
    assert caption_parts(Face(face.box, 0.9, (), {}, track_id=3)) == ["#3"]


def test_caption_says_uncertain_and_keeps_the_probability():
    face = _face(
        expression=Prediction("uncertain", 0.41, {"happy": 0.41, "sad": 0.39, "neutral": 0.2}),
        smile=Prediction("uncertain", 0.55, {"no_smile": 0.45, "smile": 0.55}),
    )
    assert caption(face) == "expression uncertain 0.41 · smile uncertain 0.55"


def test_drawing_marks_the_box_and_leaves_the_rest():
    image = np.full((160, 200, 3), 60, np.uint8)
    face = _face(smile=Prediction("smile", 0.8, {"no_smile": 0.2, "smile": 0.8}))
    out = draw_faces(image, [face])
    assert out.shape == image.shape and (image == 60).all()  # the input is untouched
    changed = (out != 60).any(axis=2)
    assert changed[40:90, 20].all() and changed[40:90, 79].all()  # box edges
    assert not changed[50:80, 30:70].any()  # inside the face
    assert changed[:30, 20:80].any()  # the caption above the box
    assert not changed[120:, :].any()
