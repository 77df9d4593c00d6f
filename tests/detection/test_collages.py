"""Group photos with known boxes built from GENKI-SZSL portraits, and YuNet's fine view that
finds their small faces."""

from __future__ import annotations

import pytest

from mien.detection import create_detector
from mien.detection.evaluate import (
    evaluate_detector,
    read_genki_szsl,
    read_imglab,
    write_collages,
    write_imglab,
)
from mien.types import Box


@pytest.fixture(scope="module")
def portraits(shared_data):
    return read_genki_szsl(shared_data / "detection" / "genki_szsl", limit=300)


def test_imglab_round_trip(tmp_path):
    items = [(tmp_path / "a.jpg", [Box(1, 2, 11, 22), Box(5.5, 6, 9, 10)]),
             (tmp_path / "b.jpg", [])]
    assert read_imglab(write_imglab(tmp_path / "boxes.xml", items)) == items


def test_collages_are_reproducible_and_hold_their_faces(portraits, tmp_path):
    first = read_imglab(write_collages(portraits, tmp_path / "a", count=1, seed=3,
                                       faces_per_photo=12))
    again = read_imglab(write_collages(portraits, tmp_path / "b", count=1, seed=3,
                                       faces_per_photo=12))
    [(path, boxes)] = first
    assert [b for _, b in again] == [boxes]
    assert (tmp_path / "b" / path.name).read_bytes() == path.read_bytes()
    assert len(boxes) == 12
    assert all(8 <= b.width <= 60 and b.width == pytest.approx(b.height, abs=0.01) for b in boxes)
    assert all(a.iou(b) == 0 for i, a in enumerate(boxes) for b in boxes[i + 1:])
    other = read_imglab(write_collages(portraits, tmp_path / "c", count=1, seed=4,
                                       faces_per_photo=12))
    assert other[0][1] != boxes


def test_the_fine_view_finds_faces_a_large_photo_shrinks_away(portraits, tmp_path):
    """1600x1200 with faces of 24 to 48 px: the whole view (640 px) makes them 10 to 19 px."""
    items = read_imglab(write_collages(portraits, tmp_path, count=1, faces_per_photo=15,
                                       face_px=(24.0, 48.0)))
    whole = evaluate_detector(create_detector("yunet"), items)
    fine = evaluate_detector(create_detector("yunet", fine_scale=1.0), items)
    assert fine.recall >= 0.8 and fine.recall > whole.recall + 0.3, (whole.recall, fine.recall)


def test_fine_view_scales():
    detector = create_detector("yunet", fine_scale=2.0, max_pixels=12_000_000)
    assert create_detector("yunet").scales(3000, 4000) == [640 / 4000]
    assert detector.scales(300, 400) == [1.0, 2.0]
    assert detector.scales(100, 100) == [1.44, 2.0]  # small pictures: the whole view is 144 px
    whole, fine = detector.scales(3000, 4000)
    assert whole == 640 / 4000 and fine == pytest.approx(1.0)  # 12 MP at most
