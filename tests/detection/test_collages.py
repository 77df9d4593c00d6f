"""Group photos with known boxes built from GENKI-SZSL portraits, and YuNet's fine view that
finds their small faces."""

from __future__ import annotations

import pytest

from mien.data.io import read_image
from mien.detection import create_detector
from mien.detection.evaluate import (
    evaluate_detector,
    match_boxes,
    other_face_detections,
    read_genki_szsl,
    read_imglab,
    write_collages,
    write_imglab,
)
from mien.detection.yunet import tile_spans
from mien.errors import MienError
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
    """1600x1200 with faces of 8 to 16 px: the whole view (640 px) makes them 3 to 6 px; the
    default fine view (3x, in tiles) makes them 24 to 48."""
    items = read_imglab(write_collages(portraits, tmp_path, count=1, faces_per_photo=15,
                                       face_px=(8.0, 16.0)))
    whole = evaluate_detector(create_detector("yunet", fine_scale=None), items)
    fine = evaluate_detector(create_detector("yunet"), items)
    assert fine.recall >= 0.9 and fine.recall > whole.recall + 0.5, (whole.recall, fine.recall)
    assert fine.false_per_image <= 2


def test_tiles_find_what_the_whole_fine_view_finds(portraits, tmp_path):
    """Small tiles (many inner edges, faces cut by them) give the faces one big tile gives."""
    [(path, truth)] = read_imglab(write_collages(portraits, tmp_path, count=1,
                                                 faces_per_photo=20, face_px=(10.0, 40.0)))
    image = read_image(path)
    one = create_detector("yunet", tile=8192).detect(image)
    tiled = create_detector("yunet", tile=300).detect(image)
    assert len(one) >= 18
    matched = sum(any(a.box.iou(b.box) > 0.7 for b in one) for a in tiled)
    assert matched >= len(one) - 1 and len(tiled) <= len(one) + 1, (len(one), len(tiled), matched)


def test_tile_spans_cover_with_overlap():
    assert tile_spans(1000, 2048, 100) == [(0, 1000)]
    for length, tile, overlap in [(5000, 2048, 300), (12000, 2048, 563), (2049, 2048, 10)]:
        spans = tile_spans(length, tile, overlap)
        assert spans[0][0] == 0 and spans[-1][1] == length
        assert all(e - s <= tile for s, e in spans)
        assert all(a[1] - b[0] >= overlap for a, b in zip(spans, spans[1:], strict=False))


def test_fine_view_scales():
    detector = create_detector("yunet", fine_scale=2.0, max_pixels=12_000_000)
    assert create_detector("yunet", fine_scale=None).scales(3000, 4000) == [640 / 4000]
    assert create_detector("yunet").scales(3000, 4000) == [640 / 4000, 3.0]
    # photos the whole view does not shrink are seen once, at their own size or larger
    assert detector.scales(300, 400) == [1.0]
    assert detector.scales(100, 100) == [1.44]
    whole, fine = detector.scales(3000, 4000)
    assert whole == 640 / 4000 and fine == pytest.approx(1.0)  # 12 MP at most


@pytest.mark.parametrize("options", [{"fine_scale": 0}, {"fine_scale": -1}, {"tile": 100}])
def test_bad_fine_view_options_are_one_line_errors(options):
    with pytest.raises(MienError, match="fine_scale|tile"):
        create_detector("yunet", **options)


def test_detections_on_labelled_other_faces_count_neither_way():
    truth = [Box(0, 0, 10, 10)]
    other = [Box(50, 50, 70, 70)]
    found = [Box(0, 0, 10, 11), Box(51, 50, 70, 71), Box(100, 100, 110, 110)]
    assert match_boxes(truth, found) == (1, 2)
    assert match_boxes(truth, found, ignore=other) == (1, 1)
    assert other_face_detections(truth, found, 0.4, other) == 1
    assert other_face_detections(truth, found[:1], 0.4, other) == 0


def test_the_fine_view_hands_its_memory_back(portraits, tmp_path, monkeypatch):
    """After a photo with a fine view, YuNet shrinks ONNX Runtime's arena (one tiny run); a
    photo seen once does not pay for that."""
    [(path, _)] = read_imglab(write_collages(portraits, tmp_path, count=1, faces_per_photo=5))
    detector = create_detector("yunet")
    calls = []
    real = detector.release_memory
    monkeypatch.setattr(detector, "release_memory", lambda: calls.append(1) or real())
    detector.detect(read_image(path))
    assert calls == [1]
    detector.detect(read_image(portraits[0][0]))  # a GENKI portrait: whole view only
    assert calls == [1]
