"""Work stops once its deadline passes, at most one unit late, and a batch holds one decoded
picture at a time. No wall-clock assertions: deadlines are passed or cancelled on purpose and
the units of work done are counted."""

from __future__ import annotations

import io
import weakref

import numpy as np
import pytest

from mien.deadline import Deadline
from mien.errors import DeadlineExceeded
from mien.inference import Pipeline
from mien.inference.pipeline import CHUNK_FACES
from mien.types import Box, Face


class CountingDetector:
    """`faces` faces per picture; calls `on_detect(n)` on its n-th call (1-based)."""

    name = "counting"

    def __init__(self, faces: int = 1, on_detect=None):
        self.faces, self.on_detect, self.calls = faces, on_detect, 0
        self.seen: list[weakref.ref] = []

    def detect(self, image):
        self.calls += 1
        self.seen.append(weakref.ref(image))
        if self.on_detect:
            self.on_detect(self.calls)
        return [Face(Box(i % 20, i // 20, i % 20 + 20, i // 20 + 20), 0.9)  # 20 px: judged
                for i in range(self.faces)]


class CountingClassifier:
    labels = ("a", "b")

    def __init__(self, on_call=None):
        self.calls: list[int] = []
        self.on_call = on_call

    def predict_proba(self, images):
        self.calls.append(len(images))
        if self.on_call:
            self.on_call()
        return np.tile([[0.25, 0.75]], (len(images), 1)).astype(np.float32)


def png(side: int = 40, value: int = 100) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((side, side, 3), value, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_deadline_checks():
    Deadline().check()  # no deadline: never raises
    assert Deadline().remaining() == float("inf")
    assert 0 < Deadline(3600).remaining() <= 3600
    Deadline(3600).check()
    with pytest.raises(DeadlineExceeded, match=r"stopped before the next step: the 0 s allowed"):
        Deadline(0).check()
    cancelled = Deadline(3600)
    cancelled.cancel()
    assert cancelled.cancelled and cancelled.remaining() == 0
    with pytest.raises(DeadlineExceeded, match="before detecting faces: the caller gave up"):
        cancelled.check("detecting faces")


def test_a_passed_deadline_does_no_work():
    detector, classifier = CountingDetector(), CountingClassifier()
    pipe = Pipeline(detector, {"x": classifier}, deadline=Deadline(0))
    with pytest.raises(DeadlineExceeded):
        pipe.analyze_many([png()] * 5)
    assert detector.calls == 0 and classifier.calls == []


def test_a_deadline_passing_mid_batch_stops_after_that_picture():
    deadline = Deadline(3600)
    detector = CountingDetector(on_detect=lambda n: deadline.cancel())  # time is up during #1
    classifier = CountingClassifier()
    pipe = Pipeline(detector, {"x": classifier}, deadline=deadline)
    with pytest.raises(DeadlineExceeded, match="the caller gave up"):
        pipe.analyze_many([png()] * 5)
    assert detector.calls == 1 and classifier.calls == []


def test_classification_stops_within_one_chunk_of_faces():
    deadline = Deadline(3600)
    classifier = CountingClassifier(on_call=deadline.cancel)
    detector = CountingDetector(faces=CHUNK_FACES + 10)
    pipe = Pipeline(detector, {"x": classifier, "y": CountingClassifier()}, deadline=deadline)
    with pytest.raises(DeadlineExceeded, match="before classifying faces"):
        pipe.analyze(np.full((40, 40, 3), 9, np.uint8))
    assert classifier.calls == [CHUNK_FACES]  # the first chunk ran to its end, no more


def test_without_a_deadline_chunks_change_nothing_but_the_calls():
    classifier = CountingClassifier()
    faces = Pipeline(CountingDetector(faces=2 * CHUNK_FACES + 3), {"x": classifier}).analyze(
        np.full((40, 40, 3), 9, np.uint8))
    assert classifier.calls == [CHUNK_FACES, CHUNK_FACES, 3]
    assert len(faces) == 2 * CHUNK_FACES + 3
    assert all(f.attributes["x"].label == "b" for f in faces)


def test_a_batch_of_encoded_pictures_holds_one_decoded_picture_at_a_time():
    detector = CountingDetector()

    def only_this_one_alive(n):
        assert [ref() is None for ref in detector.seen[:-1]] == [True] * (n - 1)

    detector.on_detect = only_this_one_alive
    classifier = CountingClassifier()
    found = Pipeline(detector, {"x": classifier}).analyze_many(
        [png(value=v) for v in (10, 120, 250)])
    assert detector.calls == 3 and classifier.calls == [3]  # still one classifier call
    assert [len(f) for f in found] == [1, 1, 1]


def test_check_deadline_reads_the_current_deadline_of_this_thread():
    import threading

    from mien.deadline import check_deadline

    check_deadline()  # none current: nothing to check
    passed = Deadline(0)
    with passed.current():
        with pytest.raises(DeadlineExceeded):
            check_deadline("the next tile")
        elsewhere = []
        thread = threading.Thread(target=lambda: elsewhere.append(check_deadline()))
        thread.start()
        thread.join()
        assert elsewhere == [None]  # another thread's work has its own deadline
    check_deadline()


def test_yunet_stops_between_the_tiles_of_its_fine_view(monkeypatch):
    from mien.detection.yunet import YuNetDetector

    detector = YuNetDetector(tile=256, threads=1)
    deadline = Deadline(3600)
    views = []
    real = YuNetDetector._detect_at

    def detect_at(self, bgr, scale):
        views.append(bgr.shape)
        if len(views) == 2:  # the whole view, then the first tile: time runs out there
            deadline.cancel()
        return real(self, bgr, scale)

    monkeypatch.setattr(YuNetDetector, "_detect_at", detect_at)
    image = np.full((700, 900, 3), 120, np.uint8)  # over max_side 640: seen in fine tiles too
    with pytest.raises(DeadlineExceeded, match="before detecting faces in the next tile"):
        Pipeline(detector, {}, deadline=deadline).detect(image)
    assert len(views) == 2
    views.clear()
    Pipeline(detector, {}).detect(image)  # without a deadline: every tile
    assert len(views) > 10
