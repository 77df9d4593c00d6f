"""Worker processes for still photos (Pipeline(threads=N) with N > 1, mien.inference.workers):
the rows of one thread, in order, with videos and unreadable files among the photos; errors
and early stops end the workers instead of hanging."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest
from tiny_classifiers import BrightnessClassifier, CentreClassifier

from mien.errors import MienError
from mien.inference.pipeline import Pipeline
from mien.inference.workers import CHUNK, can_fork

pytestmark = pytest.mark.skipif(not can_fork(), reason="worker processes need fork (Linux)")


class OneThreadBrightness(BrightnessClassifier):
    """The brightness model on a one-thread session: safe in a forked worker."""

    fork_safe = True

    def __init__(self, path):
        import onnxruntime as ort

        super().__init__(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])


class ForkSafeCentre(CentreClassifier):
    fork_safe = True  # numpy only


class DiesInAWorker(ForkSafeCentre):
    """Ends the process it runs in unless that is the test's own: a worker that crashes."""

    def __init__(self, parent: int):
        super().__init__()
        self.parent = parent

    def predict_proba(self, images):
        if os.getpid() != self.parent:
            os._exit(3)
        return super().predict_proba(images)


@pytest.fixture
def fork_safe(brightness_onnx):
    return {"light": OneThreadBrightness(brightness_onnx), "side": ForkSafeCentre()}


@pytest.fixture(scope="module")
def photos(shared_data):
    folder = shared_data / "detection" / "genki_szsl" / "files"
    return sorted(folder.glob("*.jpg"))[: 3 * CHUNK + 3]


def _workers() -> set:
    """Worker processes alive now (other tests may leave processes of their own)."""
    return {p for p in multiprocessing.active_children() if p.name == "mien-analysis-worker"}


def _key(row):
    face = row.face
    return (row.source, row.frame, row.status, row.face_index,
            None if face is None else face.box,
            None if face is None else {k: round(p.probabilities[p.label], 5)
                                       for k, p in face.attributes.items()})


def test_worker_processes_give_the_rows_of_one_thread(models_env, fork_safe, photos, tmp_path,
                                                       face_video):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    inputs = [*photos[:CHUNK + 1], bad, *photos[CHUNK + 1:2 * CHUNK], face_video,
              *photos[2 * CHUNK:]]
    one = Pipeline("yunet", fork_safe, threads=1)
    expected = [_key(r) for r in one.run(inputs, every=6)]
    shared = Pipeline("yunet", fork_safe, threads=2)
    seen_workers, rows = 0, []
    for row in shared.run(inputs, every=6):
        seen_workers = max(seen_workers, len(_workers()))
        rows.append(_key(row))
    assert seen_workers == 1  # threads=2: the caller and one worker
    assert rows == expected
    assert [r[2] for r in rows].count("error") == 1
    assert shared.stats.frames == one.stats.frames == len(photos) + 1 + 6  # 36 frames, every 6th
    assert shared.stats.faces == one.stats.faces
    assert set(shared.stats.classify_model_s) == {"light", "side"}
    assert _workers() == set()


def test_frames_carry_their_pixels_only_when_asked(models_env, fork_safe, photos):
    pipeline = Pipeline("yunet", fork_safe, threads=2)
    with_pixels = list(pipeline.run_frames(photos))
    assert all(frame.image is not None for frame, _ in with_pixels)
    without = list(pipeline.run_frames(photos, images=False))
    assert any(frame.image is None for frame, _ in without)  # those from the worker
    assert [[_key(r) for r in rows] for _, rows in without] == [
        [_key(r) for r in rows] for _, rows in with_pixels]
    first = with_pixels[0][0]
    assert np.array_equal(first.image, pipeline.run_frames([photos[0]]).__next__()[0].image)


def test_a_worker_that_dies_is_an_error_not_a_hang(models_env, photos):
    pipeline = Pipeline("yunet", {"side": DiesInAWorker(os.getpid())}, threads=2)
    with pytest.raises(MienError, match="worker process stopped .*exit code 3.*--threads 1"):
        list(pipeline.run(photos))
    assert _workers() == set()


def test_stopping_early_ends_the_workers(models_env, fork_safe, photos):
    rows = Pipeline("yunet", fork_safe, threads=2).run(photos)
    next(rows)
    assert len(_workers()) == 1
    rows.close()
    assert _workers() == set()


def test_networks_not_known_fork_safe_stay_on_threads(models_env, brightness_onnx, photos):
    """A classifier that does not say it is fork-safe (here one whose session has a thread
    pool) keeps the work in this process."""
    pipeline = Pipeline("yunet", {"light": BrightnessClassifier(brightness_onnx)}, threads=2)
    for _ in pipeline.run(photos):
        assert _workers() == set()
    assert pipeline.stats.frames == len(photos)
