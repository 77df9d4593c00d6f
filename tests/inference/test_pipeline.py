"""The pipeline end to end on real photos and a video made from them, with real classifiers."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from tiny_classifiers import BRIGHTNESS_PREPROCESS, BrightnessClassifier, CentreClassifier

import mien
from mien.data.io import read_image
from mien.data.preprocess import Framing
from mien.inference import Frame, Pipeline
from mien.inference.align import crop_face
from mien.inference.pipeline import load_attributes
from mien.inference.tracking import TrackSummarizer


@pytest.fixture
def pipeline(models_env, classifiers):
    return Pipeline("yunet", classifiers, batch_size=16)


def test_analyze_fills_every_attribute_from_the_face_crop(pipeline, two_faces):
    faces = pipeline.analyze(two_faces)
    assert len(faces) == 2
    image = read_image(two_faces)
    for face in faces:
        assert set(face.attributes) == {"light", "side"}
        light = face.attributes["light"]
        assert list(light.probabilities) == ["dark", "bright"]
        framing = pipeline.framings["light"]  # a classifier without one: the old default
        assert framing == Framing(margin=0.2, align=True)
        crop = crop_face(image, face, framing.margin, align=framing.align)
        expected = BrightnessClassifier.expected(crop)
        got = [light.probabilities["dark"], light.probabilities["bright"]]
        assert got == pytest.approx(expected, abs=1e-4)
        assert light.label == ("bright" if expected[1] > 0.5 else "dark")
        side = face.attributes["side"]
        assert sum(side.probabilities.values()) == pytest.approx(1, abs=1e-5)
        assert side.score == max(side.probabilities.values())
    # The same answers from an array and from the encoded bytes.
    again = pipeline.analyze(image)
    assert [f.attributes["light"].score for f in again] == [
        f.attributes["light"].score for f in faces
    ]
    assert len(pipeline.analyze(two_faces.read_bytes())) == 2


def test_darker_faces_read_darker(pipeline, two_faces):
    image = read_image(two_faces)
    bright = pipeline.analyze(image)
    dark = pipeline.analyze((image * 0.4).astype(np.uint8))
    assert len(dark) == 2
    for a, b in zip(bright, dark, strict=True):
        assert (
            b.attributes["light"].probabilities["bright"]
            < a.attributes["light"].probabilities["bright"]
        )


def test_run_over_a_folder_with_no_face_and_corrupt_files(
    pipeline, two_faces, group_photo, tmp_path
):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(two_faces, folder / "a.jpg")
    shutil.copy(group_photo, folder / "sub" / "b.jpg")
    from PIL import Image

    Image.fromarray(np.full((120, 160, 3), 200, np.uint8)).save(folder / "c_blank.png")
    (folder / "d_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (folder / "notes.txt").write_text("ignored")
    rows = list(pipeline.run([folder, tmp_path / "missing.jpg"]))
    by_source = {}
    for row in rows:
        by_source.setdefault(row.source.rsplit("/", 1)[-1], []).append(row)
    assert list(by_source) == ["a.jpg", "c_blank.png", "d_corrupt.jpg", "b.jpg", "missing.jpg"]
    assert [r.face_index for r in by_source["a.jpg"]] == [0, 1]
    assert len(by_source["b.jpg"]) == 3
    assert all(r.status == "ok" and r.face.attributes for r in by_source["a.jpg"])
    (blank,) = by_source["c_blank.png"]
    assert blank.status == "no_face" and blank.face is None
    (bad,) = by_source["d_corrupt.jpg"]
    assert bad.status == "error" and "d_corrupt.jpg" in bad.message
    (missing,) = by_source["missing.jpg"]
    assert missing.status == "error" and "not found" in missing.message
    assert pipeline.stats.frames == 5 and pipeline.stats.faces == 5 and pipeline.stats.errors == 2


def test_batching_changes_nothing_but_the_number_of_calls(
    models_env, brightness_onnx, two_faces, group_photo
):
    frames = [Frame(str(p), 0, None, read_image(p)) for p in [two_faces, group_photo] * 3]
    results = {}
    for batch in (1, 64):
        light = BrightnessClassifier(brightness_onnx)
        pipe = Pipeline("yunet", {"light": light}, batch_size=batch)
        rows = list(pipe.run(frames))
        results[batch] = [(r.source, r.face_index, r.face.attributes["light"].score) for r in rows]
        assert sum(light.calls) == 15
        if batch == 1:
            assert len(light.calls) == 6  # one call per frame: each frame fills a batch
    assert results[1] == results[64]


def test_video_tracks_stay_stable(models_env, classifiers, face_video):
    pipe = Pipeline("yunet", classifiers, smoothing=0.5)
    rows = list(pipe.run([face_video]))
    assert {r.status for r in rows} == {"ok"}
    frames = sorted({r.frame for r in rows})
    assert frames == list(range(36))
    assert rows[1].timestamp == pytest.approx(0.0) and rows[-1].timestamp == pytest.approx(35 / 12)
    # Two faces per frame, and each keeps its id: the upper face is always the same track.
    ids_upper = set()
    ids_lower = set()
    for f in frames:
        faces = [r.face for r in rows if r.frame == f]
        assert len(faces) == 2
        upper, lower = sorted(faces, key=lambda face: face.box.y1)
        ids_upper.add(upper.track_id)
        ids_lower.add(lower.track_id)
    assert len(ids_upper) == 1 and len(ids_lower) == 1 and ids_upper != ids_lower
    summary = TrackSummarizer()
    for r in rows:
        summary.add(r.source, r.frame, r.timestamp, r.face)
    tracks = summary.summaries()
    assert sorted(t.frames for t in tracks) == [36, 36]
    for t in tracks:
        assert set(t.dominant) == {"light", "side"}
        assert sum(t.shares["light"].values()) == pytest.approx(1.0)


def test_video_sampling_every_and_fps(models_env, classifiers, face_video):
    pipe = Pipeline("yunet", classifiers)
    every = sorted({r.frame for r in pipe.run([face_video], every=5)})
    assert every == [0, 5, 10, 15, 20, 25, 30, 35]
    fps = sorted({r.frame for r in pipe.run([face_video], fps=4)})
    assert fps == list(range(0, 36, 3))


def test_detection_only_and_mien_analyze(models_env, two_faces):
    pipe = Pipeline("haar", {})
    faces = pipe.analyze(two_faces)
    assert len(faces) == 2 and all(f.attributes == {} for f in faces)
    faces = mien.analyze(two_faces, detector="yunet", attributes=[])
    assert len(faces) == 2 and faces[0].landmarks
    faces = mien.analyze(two_faces, detector="yunet", attributes={"side": CentreClassifier()})
    assert len(faces) == 2 and set(faces[1].attributes) == {"side"}


def test_the_bundled_yunet_is_the_default(two_faces, tmp_path, monkeypatch):
    monkeypatch.setenv("MIEN_MODELS_DIR", str(tmp_path))  # nothing fetched
    assert Pipeline(None, {}).detector.name == "yunet"
    faces = mien.analyze(two_faces, attributes=[])
    assert len(faces) == 2 and len(faces[0].landmarks) == 5  # YuNet's; Haar gives none


def test_attribute_specs(brightness_onnx):
    with pytest.raises(mien.errors.MienError, match="nope"):
        load_attributes(["smile=nope"])
    loaded = load_attributes([f"light={brightness_onnx}", " ", f"dup = {brightness_onnx}"])
    assert list(loaded) == ["light", "dup"] and loaded["light"].labels == ("dark", "bright")
    with pytest.raises(mien.errors.MienError, match="repeats"):
        load_attributes([f"a={brightness_onnx}", f"a={brightness_onnx}"])
    with pytest.raises(mien.errors.MienError, match="no attribute name"):
        load_attributes([f"={brightness_onnx}"])


def test_landmark_option(models_env, two_faces):
    from mien.detection.base import detector_entry

    with pytest.raises(mien.errors.MienError, match="landmarks 'eyes'"):
        Pipeline("yunet", {}, landmarks="eyes")
    assert detector_entry("mtcnn").available()  # it ships inside mien
    plain = Pipeline("yunet", {}).analyze(two_faces)
    refined = Pipeline("yunet", {}, landmarks="mtcnn").analyze(two_faces)
    assert [f.box for f in refined] == [f.box for f in plain]
    for a, b in zip(plain, refined, strict=True):
        moved = np.hypot(*(np.array(a.landmarks) - np.array(b.landmarks)).T)
        assert 0 < moved.max() < 0.25 * a.box.width  # same points, placed anew


class _Fixed:
    """Hands out the given probability rows in turn, one per face."""

    name, labels = "fixed", ("a", "b", "c")
    preprocess = BRIGHTNESS_PREPROCESS

    def __init__(self, rows):
        self.rows = iter(np.array(rows, np.float32))

    def predict_proba(self, images):
        return np.stack([next(self.rows) for _ in images])


class _OneFace:
    def detect(self, image):
        from mien.types import Box, Face

        return [Face(Box(10, 10, 50, 50), 0.9)]


def test_min_confidence_labels_low_answers_uncertain_and_keeps_their_probabilities():
    rows = [[0.5, 0.3, 0.2], [0.9, 0.05, 0.05], [0.6, 0.4, 0.0]]
    crops = [np.zeros((8, 8, 3), np.uint8)] * 3
    plain = Pipeline(_OneFace(), {"x": _Fixed(rows)}).classify(crops)
    sure = Pipeline(_OneFace(), {"x": _Fixed(rows)}, min_confidence=0.6).classify(crops)
    assert [p["x"].label for p in plain] == ["a", "a", "a"]
    assert [p["x"].label for p in sure] == ["uncertain", "a", "a"]  # 0.6 is not below 0.6
    assert sure[0]["x"].uncertain and not sure[1]["x"].uncertain
    assert sure[0]["x"].score == pytest.approx(0.5)
    assert sure[0]["x"].probabilities == plain[0]["x"].probabilities
    for bad in (-0.1, 1.5):
        with pytest.raises(mien.errors.MienError, match=rf"min_confidence {bad}: use a prob"):
            Pipeline(_OneFace(), {}, min_confidence=bad)


def test_min_confidence_judges_the_smoothed_answer_of_a_track():
    image = np.full((60, 60, 3), 128, np.uint8)
    frames = [Frame("clip", i, i / 10, image, stream=True) for i in range(2)]
    fixed = _Fixed([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0]])
    pipe = Pipeline(_OneFace(), {"x": fixed}, smoothing=0.5, min_confidence=0.6)
    first, second = (r.face.attributes["x"] for r in pipe.run(frames))
    assert first.label == "a"
    assert second.label == "uncertain"  # mean of the two frames: 0.5 / 0.5
    assert second.probabilities == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.0})


def test_each_attribute_reads_faces_cut_with_its_own_framing(
    models_env, brightness_onnx, two_faces, group_photo
):
    tight, loose = Framing(margin=0.0, align=False), Framing(margin=0.4, align=True)
    models = {name: BrightnessClassifier(brightness_onnx) for name in ("tight", "loose", "plain")}
    models["tight"].framing, models["loose"].framing = tight, loose  # "plain" has none
    pipe = Pipeline("yunet", models)
    assert pipe.framings == {"tight": tight, "loose": loose, "plain": Framing()}
    image = read_image(two_faces)
    faces = pipe.analyze(image)
    assert len(faces) == 2
    for face in faces:
        for name, framing in pipe.framings.items():
            crop = crop_face(image, face, framing.margin, align=framing.align)
            want = BrightnessClassifier.expected(crop)[1]
            assert face.attributes[name].probabilities["bright"] == pytest.approx(want, abs=1e-4)
        assert face.attributes["tight"].score != pytest.approx(face.attributes["loose"].score)
    assert len(pipe.crops(image, faces)) == 3  # one cut per distinct framing
    same = Pipeline("yunet", {"a": models["plain"], "b": BrightnessClassifier(brightness_onnx)})
    assert len(same.crops(image, faces)) == 1

    # Streams and batches of pictures give each attribute the same crops as `analyze`.
    rows = list(pipe.run([two_faces]))
    assert [r.face.attributes for r in rows] == [f.attributes for f in faces]
    for model in models.values():
        model.calls.clear()
    many = pipe.analyze_many([two_faces, group_photo])
    assert [len(f) for f in many] == [2, 3]
    assert [f.attributes for f in many[0]] == [f.attributes for f in faces]
    assert all(model.calls == [5] for model in models.values())  # one call for both pictures


def test_margin_and_align_given_override_every_models_framing(models_env, brightness_onnx):
    light = BrightnessClassifier(brightness_onnx)
    light.framing = Framing(margin=0.0, align=False)
    pipe = Pipeline("yunet", {"light": light, "side": CentreClassifier()}, margin=0.3)
    assert pipe.framings == {"light": Framing(0.3, False), "side": Framing(0.3, True)}
    pipe = Pipeline("yunet", {"light": light}, margin=0.1, align=True)
    assert pipe.framings == {"light": Framing(0.1, True)}
    with pytest.raises(mien.errors.MienError, match="margin=-0.5"):
        Pipeline("yunet", {"light": light}, margin=-0.5)


def test_pipeline_classifiers_run_on_one_thread_with_the_same_answers():
    """A Pipeline loads each network on one ONNX Runtime thread (classification runs beside
    detection); the answers are those of the default session."""
    from mien.inference.pipeline import ANALYSIS_THREADS
    from mien.models.loading import load_classifier

    pipeline = Pipeline("haar", ["smile"])
    mine = pipeline.attributes["smile"]
    assert ANALYSIS_THREADS == 1 and mine.threads == 1
    default = load_classifier("smile")
    assert default.threads is None and default.with_threads(None) is default
    faces = [np.random.default_rng(i).integers(0, 256, (40, 40), dtype=np.uint8)
             for i in range(5)]
    np.testing.assert_allclose(mine.predict_proba(faces), default.predict_proba(faces),
                               atol=1e-6)


def test_one_thread_gives_the_rows_of_overlapped_stages(models_env, classifiers, two_faces,
                                                       group_photo):
    """Pipeline(threads=1) decodes, detects and classifies in turn on the caller's thread; the
    rows are those of the overlapped stages."""
    import threading

    paths = [two_faces, group_photo, two_faces]
    overlapped = list(Pipeline("yunet", classifiers, threads=2).run(paths))
    before = threading.active_count()
    one = Pipeline("yunet", classifiers, threads=1, batch_size=2)
    seen = []
    for row in one.run(paths):
        seen.append(threading.active_count())
        assert row.status in ("ok", "small")
    assert max(seen) == before  # no thread was started
    rows = list(one.run(paths))
    assert [(r.source, r.face_index, r.face.box) for r in rows] == [
        (r.source, r.face_index, r.face.box) for r in overlapped]
    for a, b in zip(rows, overlapped, strict=True):
        assert a.face.attributes["light"].probabilities == pytest.approx(
            b.face.attributes["light"].probabilities, abs=1e-5)
    assert one.stats.decode_s > 0 and one.stats.frames == 6
    with pytest.raises(mien.errors.MienError, match="threads"):
        Pipeline("yunet", classifiers, threads=0)
