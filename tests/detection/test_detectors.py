"""Every registered detector, through the registry, on real photos with ground-truth boxes."""

from __future__ import annotations

import numpy as np
import pytest

from mien.data.io import read_image
from mien.detection import create_detector, default_detector_name, files, list_detectors, nms
from mien.detection.base import DetectorFallbackWarning, detector_entry
from mien.detection.evaluate import evaluate_detector, match_boxes
from mien.errors import MienError
from mien.types import Box

# Minimum recall at IoU >= 0.4 per detector: VOC group photos (18 small faces), GENKI portraits.
# Set a little under what each backend measured, so a regression fails.
MIN_RECALL = {
    "haar": {"voc": 0.6, "genki": 0.8},
    "yunet": {"voc": 0.9, "genki": 0.9},
    "mtcnn": {"voc": 0.8, "genki": 0.9},
}


@pytest.fixture(params=list_detectors())
def detector(request):
    name = request.param
    if not detector_entry(name).available():
        pytest.skip(f"{name}: its model file or package is not installed here")
    return create_detector(name)


def _evaluate(detector, items):
    score = evaluate_detector(detector, items)
    assert score.faces == sum(len(t) for _, t in items) > 0
    return score.recall, score.false_per_image


def test_every_detector_is_tested():
    assert set(list_detectors()) <= set(MIN_RECALL)


def test_recall_on_voc_group_photos(detector, voc):
    recall, false_per_image = _evaluate(detector, voc)
    assert recall >= MIN_RECALL[detector.name]["voc"], recall
    assert false_per_image <= 1.5


def test_recall_on_genki_portraits(detector, genki):
    recall, false_per_image = _evaluate(detector, genki)
    assert recall >= MIN_RECALL[detector.name]["genki"], recall
    assert false_per_image <= 0.5


def test_landmarks_sit_in_the_face(detector, voc):
    path, truth = voc[2]  # two large frontal faces
    faces = detector.detect(read_image(path))
    assert len(faces) >= 2
    for face in faces:
        b = face.box
        assert 0 <= b.x1 < b.x2 and 0 <= b.y1 < b.y2
        if not face.landmarks:
            continue
        assert len(face.landmarks) == 5
        (ex1, ey1), (ex2, ey2), (nx, ny), (mx1, my1), (mx2, my2) = face.landmarks
        assert ex1 < ex2 and mx1 < mx2  # image-left point first
        assert max(ey1, ey2) < ny < min(my1, my2)  # eyes above nose above mouth
        assert b.x1 <= min(ex1, mx1) and max(ex2, mx2) <= b.x2


def test_min_face_drops_small_faces(detector, voc):
    path, truth = voc[0]  # seven faces of 37 to 45 pixels
    image = read_image(path)
    assert len(detector.detect(image)) >= 4
    big = create_detector(detector.name, min_face=60)
    assert big.detect(image) == []


def test_upside_down_photo_and_blank_image(detector, voc):
    blank = np.full((240, 320, 3), 128, np.uint8)
    assert detector.detect(blank) == []
    gray = read_image(voc[2][0], "gray")  # gray input is accepted as well
    assert len(detector.detect(gray)) >= 2


def test_yunet_maps_boxes_back_from_a_downscale(voc):
    path, truth = voc[2]
    image = read_image(path)
    native = create_detector("yunet", max_side=None).detect(image)
    small = create_detector("yunet", max_side=240).detect(image)
    assert len(native) == len(small) == 2
    for a in native:
        assert max(a.box.iou(b.box) for b in small) > 0.7


def test_yunet_is_the_default_with_no_models_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MIEN_MODELS_DIR", str(tmp_path))  # nothing fetched
    assert default_detector_name() == "yunet"
    assert create_detector().name == "yunet"
    assert "yunet" in list_detectors(available_only=True)


def test_an_unavailable_detector_is_replaced_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "bundled_model_file", lambda name: tmp_path / "gone.onnx")
    assert "yunet" not in list_detectors(available_only=True)
    with pytest.warns(DetectorFallbackWarning, match=r"detector 'yunet' is not available "
                      r"\(reinstall mien.*\); running 'haar' instead"):
        detector = create_detector("yunet", min_face=30, max_side=320)  # max_side: YuNet's own
    assert detector.name == "haar" and detector.options.min_face == 30
    with pytest.warns(DetectorFallbackWarning):
        assert create_detector().name == default_detector_name() == "haar"


def test_mtcnn_without_its_files_is_replaced_by_yunet(monkeypatch):
    from mien.detection import mtcnn

    monkeypatch.setattr(mtcnn, "find_model_file", lambda name, directory=None: None)
    with pytest.warns(DetectorFallbackWarning, match=r"'mtcnn' is not available \(reinstall "
                      r"mien: its bundled MTCNN files.*\); running 'yunet'"):
        assert create_detector("mtcnn").name == "yunet"


def test_unknown_detector_and_bad_options():
    with pytest.raises(MienError, match="unknown detector 'nope'.*haar"):
        create_detector("nope")
    with pytest.raises(MienError, match="min_face"):
        create_detector("haar", min_face=0)


def test_scores_are_sorted(detector, voc):
    scores = [f.score for f in detector.detect(read_image(voc[0][0]))]
    assert len(scores) >= 4 and scores == sorted(scores, reverse=True)


def test_match_boxes_is_one_to_one():
    truth = [Box(0, 0, 10, 10), Box(100, 100, 110, 110)]
    found = [Box(1, 1, 11, 11), Box(0, 0, 10, 10), Box(50, 50, 60, 60)]
    assert match_boxes(truth, found) == (1, 2)
    assert match_boxes(truth, found[:1], iou=0.9) == (0, 1)


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], float)
    scores = np.array([0.5, 0.9, 0.7, 0.6])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.95).tolist() == [1, 2, 3, 0]
    assert Box(0, 0, 10, 10).iou(Box(1, 1, 11, 11)) == pytest.approx(81 / 119)


def test_yunet_finds_faces_that_fill_small_crops(shared_data):
    # FER2013 crops are 48x48 faces: YuNet misses a quarter of them at their own size.
    paths = sorted((shared_data / "fer2013" / "val").glob("*/*.jpg"))[7::60][:60]
    assert len(paths) == 60
    detector = create_detector("yunet")
    found = [detector.detect(read_image(p)) for p in paths]
    assert sum(bool(f) for f in found) >= 54
    for faces in found:
        if faces:  # the face is most of the picture, centred, its nose inside its box
            b, (nose_x, nose_y) = faces[0].box, faces[0].landmarks[2]
            assert b.width > 24 and b.area <= 48 * 48
            assert 12 < (b.x1 + b.x2) / 2 < 36 and 12 < (b.y1 + b.y2) / 2 < 36
            assert b.x1 <= nose_x <= b.x2 and b.y1 <= nose_y <= b.y2


def test_haar_lets_go_of_a_large_pictures_buffers():
    """OpenCV's cascade kept the integral images of its largest picture's pyramid: a server's
    detector held them after a 4 MP photo for good (tens of bytes a pixel)."""
    from mien.detection.haar import RELOAD_PIXELS

    def rss_mib() -> float:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

    detector = create_detector("haar")
    side = int(RELOAD_PIXELS ** 0.5) + 1
    detector.detect(np.full((64, 64, 3), 128, np.uint8))  # OpenCV's own first-call set-up
    before = rss_mib()
    detector.detect(np.full((side, side, 3), 128, np.uint8))
    assert rss_mib() - before < 60
