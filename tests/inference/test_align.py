"""Aligned crops of real faces: the eyes come out level, centred, at the requested size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mien.data.io import read_image
from mien.detection import create_detector
from mien.inference.align import crop_face, crop_transform, eye_angle, map_points
from mien.types import Box, Face


def _rotate(image, degrees):
    import cv2

    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def mtcnn():
    from mien.detection.base import detector_entry

    assert detector_entry("mtcnn").available(), "MTCNN's nets ship inside mien"
    return create_detector("mtcnn", min_face=20)  # the pyramid these tolerances were set on


@pytest.mark.parametrize("degrees", [-18, 0, 14])
def test_aligned_crop_has_level_eyes(mtcnn, two_faces, degrees):
    # MTCNN's landmarks follow head roll (YuNet's barely do), so it checks the alignment: both
    # faces in this photo lean by about 10 degrees to start with.
    upright = read_image(two_faces)
    before = sorted(mtcnn.detect(upright), key=lambda f: f.box.y1)
    image = _rotate(upright, degrees)
    faces = sorted(mtcnn.detect(image), key=lambda f: f.box.y1)
    assert len(faces) == len(before) == 2
    for face, original in zip(faces, before, strict=True):
        # OpenCV's angle turns the picture counter-clockwise, so the eye line turns by -angle.
        turned = math.degrees(eye_angle(face) - eye_angle(original))
        assert turned == pytest.approx(-degrees, abs=5)
        crop = crop_face(image, face, margin=0.6)
        again = mtcnn.detect(crop)
        assert again, "the aligned crop must still show a face"
        assert abs(math.degrees(eye_angle(again[0]))) < 5
        # The detector's own eye points, carried through the crop's transform, are level and
        # on either side of the crop's centre.
        matrix, side = crop_transform(face, margin=0.6)
        eyes = map_points(matrix, face.landmarks[:2])
        assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-6
        assert crop.shape == (side, side, 3)
        assert 0 < eyes[0, 0] < side / 2 < eyes[1, 0] < side


def test_mtcnn_landmarks_on_yunet_boxes_follow_the_tilt(mtcnn, models_env, two_faces):
    from mien.detection.mtcnn import MTCNNLandmarks

    yunet, refine = create_detector("yunet"), MTCNNLandmarks()
    upright = read_image(two_faces)
    level = {}
    for degrees in (0, -18, 14):
        image = _rotate(upright, degrees)
        faces = sorted(yunet.detect(image), key=lambda f: f.box.y1)
        refined = refine(image, faces)
        assert [f.box for f in refined] == [f.box for f in faces]
        for k, face in enumerate(refined):
            level.setdefault(k, math.degrees(eye_angle(face)))
            turned = math.degrees(eye_angle(face)) - level[k]
            assert turned == pytest.approx(-degrees, abs=5)
            again = mtcnn.detect(crop_face(image, face, margin=0.6))
            assert again and abs(math.degrees(eye_angle(again[0]))) < 5
        # YuNet's own eye points miss most of the tilt: the reason for the refinement.
        if degrees:
            assert abs(math.degrees(eye_angle(faces[0])) - level[0]) < abs(degrees) / 2


def test_yunet_landmarks_give_a_level_crop(models_env, two_faces):
    image = read_image(two_faces)
    for face in create_detector("yunet").detect(image):
        matrix, side = crop_transform(face)
        eyes = map_points(matrix, face.landmarks[:2])
        assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-6
        assert eyes[0, 1] < side / 2  # eyes in the upper half


def test_boxes_only_crop_is_the_box_plus_margin():
    image = np.zeros((100, 200, 3), np.uint8)
    image[20:60, 50:90] = 200  # a bright 40x40 square where the "face" is
    face = Face(Box(50, 20, 90, 60), 1.0)
    crop = crop_face(image, face, margin=0.5)  # side 60: 10 px of dark border around the square
    assert crop.shape == (60, 60, 3)
    assert crop[12:48, 12:48].min() == 200
    assert crop[:8].max() == 0 and crop[:, :8].max() == 0 and crop[52:].max() == 0


def test_crop_at_the_image_edge_and_fixed_size():
    image = np.full((50, 50, 3), 90, np.uint8)
    face = Face(Box(-10, -10, 30, 30), 1.0, ((5.0, 5.0), (20.0, 5.0)))
    crop = crop_face(image, face, size=24)
    assert crop.shape == (24, 24, 3)
    assert (crop == 90).all()  # edges replicate instead of turning black


def test_big_faces_are_shrunk_without_aliasing():
    # A 1-pixel checkerboard averages to mid-grey; sampling it at a 1/8 scale without an area
    # filter would give a blotchy pattern of 0s and 255s instead.
    board = (np.indices((1200, 1200)).sum(axis=0) % 2 * 255).astype(np.uint8)
    image = np.repeat(board[:, :, None], 3, axis=2)
    face = Face(Box(100, 100, 1100, 1100), 1.0, ((400.0, 400.0), (800.0, 420.0)))
    crop = crop_face(image, face, margin=0.0)
    assert crop.shape[0] == 256
    assert np.abs(crop[10:-10, 10:-10].astype(float) - 127.5).max() < 40
