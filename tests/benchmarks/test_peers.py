"""The pure parts of benchmarks/peers.py and benchmarks/peer_worker_fer.py (no peer venv needed)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mien.data.datasets import FER_CLASSES

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


peers = _load("peers")
worker = _load("peer_worker_fer")
FOLDER_ORDER = tuple(sorted(FER_CLASSES))  # class folders are read in sorted order


def test_fer_labels_are_the_fer2013_csv_order():
    assert worker.FER_LABELS == FER_CLASSES  # fer's model predicts the CSV's emotion indices


def test_reorder_moves_each_fer_column_to_its_dataset_class():
    proba = np.eye(7, dtype=np.float32)  # row i: certain of fer's class i
    out = peers.reorder_columns(proba, worker.FER_LABELS, FOLDER_ORDER)
    for i, label in enumerate(worker.FER_LABELS):
        assert FOLDER_ORDER[out[i].argmax()] == label
    # fer's "sad" (4) and "neutral" (6) sit at folder indices 5 and 4
    assert out[4].argmax() == 5 and out[6].argmax() == 4


def test_reorder_refuses_labels_that_differ():
    with pytest.raises(ValueError, match="contempt"):
        peers.reorder_columns(np.ones((1, 7)), [*FER_CLASSES[:6], "contempt"], FOLDER_ORDER)
    with pytest.raises(ValueError, match="columns"):
        peers.reorder_columns(np.ones((1, 6)), FER_CLASSES, FOLDER_ORDER)


def test_worker_preprocessing_is_fers_resize_and_scale_to_minus_one_one():
    faces = np.stack([np.zeros((48, 48), np.uint8), np.full((48, 48), 255, np.uint8),
                      np.tile(np.arange(0, 240, 5, dtype=np.uint8), (48, 1))])
    x = worker.preprocess(faces, (64, 64))
    assert x.shape == (3, 64, 64, 1) and x.dtype == np.float32
    assert np.all(x[0] == -1.0) and np.all(x[1] == 1.0)
    ramp = x[2, 0, :, 0]  # left-to-right ramp 0..235 stays monotone, within [-1, 1]
    assert np.all(np.diff(ramp) >= 0) and -1.0 <= ramp[0] < -0.9 and 0.8 < ramp[-1] < 0.85


def test_score_row_and_table_from_known_predictions():
    classes = ("a", "b", "c")
    y = np.array([0, 0, 1, 1, 2, 2])
    proba = np.eye(3)[[0, 1, 1, 1, 2, 0]]  # 4 of 6 right; recall a 1/2, b 1, c 1/2
    row = peers.score_row("m1", "val", proba, y, classes)
    assert row["n"] == 6 and row["accuracy"] == pytest.approx(4 / 6)
    assert row["recall"] == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.5})
    assert row["balanced_accuracy"] == pytest.approx(2 / 3)
    assert row["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]

    fast = row | peers.timing([0.001, 0.002, 0.004], [0.5, 0.25], n=6)
    assert fast["ms_per_face"] == pytest.approx(2.0) and fast["faces_per_s"] == pytest.approx(24)
    text = peers.table([fast, row | {"model": "m2", "images": "blurred"}], recall_of="b")
    lines = text.splitlines()
    assert lines[0].split() == ["model", "images", "n", "acc", "bal.acc", "R:b", "macro-F1",
                                "ms/face", "faces/s"]
    assert lines[2].split() == ["m1", "val", "6", "0.6667", "0.6667", "1.000", "0.6556", "2.00",
                                "24"]
    assert lines[3].split()[-2:] == ["-", "-"]  # no timings for that row


def test_score_sets_adds_val_without_duplicates_after_val():
    classes = ("a", "b")
    y = np.array([0, 0, 1, 1])
    right = np.eye(2)[y]
    duplicate = np.array([False, True, False, True])
    rows = peers.score_sets("m", {"val": np.eye(2)[[0, 1, 1, 0]], "val blurred": right}, y,
                            duplicate, classes)
    assert [(r["images"], r["n"], r["accuracy"]) for r in rows] == [
        ("val", 4, 0.5), (peers.DEDUP, 2, 1.0), ("val blurred", 4, 1.0)]
    points = peers.mien_minus_fer(
        [r | {"model": "mien"} for r in rows] + [rows[0] | {"model": "fer", "accuracy": 0.4}],
        "mien", "fer")
    assert points == {"val": pytest.approx(10.0)}  # only image sets both models were scored on


def test_byte_identical_matches_file_bytes_not_names(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    for folder, name, data in [("train", "a.jpg", b"face one"), ("train", "b.jpg", b"face two"),
                               ("val", "a.jpg", b"face three"), ("val", "x.jpg", b"face two"),
                               ("val", "y.jpg", b"face two ")]:
        (tmp_path / folder / name).write_bytes(data)
    val = [tmp_path / "val" / n for n in ("a.jpg", "x.jpg", "y.jpg")]
    found = peers.byte_identical(val, sorted((tmp_path / "train").iterdir()))
    assert found.tolist() == [False, True, False]


def _faces(n: int = 5, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8)


@pytest.mark.parametrize("name", list(peers.DEGRADATIONS))
def test_each_degradation_keeps_shape_and_changes_pixels_the_same_way_every_time(name):
    _, degrade = peers.DEGRADATIONS[name]
    faces = _faces()
    out = degrade(faces)
    assert out.shape == faces.shape and out.dtype == np.uint8
    assert not np.array_equal(out, faces)
    assert np.array_equal(degrade(faces), out)  # seeded where random
    assert np.array_equal(faces, _faces())  # the input is left alone


def test_darken_halves_pixel_values():
    faces = np.array([[[0, 1, 3, 100, 255]]], dtype=np.uint8)
    assert peers.darken(faces, 0.5).tolist() == [[[0, 0, 2, 50, 128]]]


def test_shift_moves_each_face_by_the_fraction_and_replicates_the_border():
    face = np.zeros((1, 50, 50), np.uint8)
    face[0, 20:30, 20:30] = 255
    out = peers.shift(np.repeat(face, 20, axis=0), 0.1, seed=0)
    for moved in out:
        ys, xs = np.nonzero(moved)
        dy, dx = ys.min() - 20, xs.min() - 20
        assert moved.sum() == face.sum()  # a pure move: the square is whole, nothing added
        assert 4 <= np.hypot(dy, dx) <= 6  # 10 % of 50 px, in whole pixels
    assert len({tuple(np.argwhere(m)[0]) for m in out}) > 5  # directions differ between faces
    ramp = np.tile(np.arange(50, dtype=np.uint8), (50, 1))[None]
    shifted = peers.shift(ramp, 0.1, seed=0)[0]
    steps = np.diff(shifted.astype(int), axis=1)
    assert np.isin(steps, [0, 1]).all()  # the ramp, plus copies of its edge value: no black border
    assert (steps == 0).any(axis=1).all()


def test_rescale_loses_detail_but_keeps_the_mean():
    faces = _faces()
    out = peers.rescale(faces, 20)
    assert abs(out.mean() - faces.mean()) < 2
    assert out.std() < faces.std() / 2  # pixel noise cannot survive 20 px


def test_zoom_out_puts_the_shrunk_face_in_the_middle():
    face = np.full((1, 48, 48), 200, np.uint8)
    face[0, :, :24] = 50  # left half dark
    out = peers.zoom_out(face, 1.2)[0]
    assert out.shape == (48, 48)
    assert (out[:, :4] == 50).all() and (out[:, -4:] == 200).all()  # margins replicate the edges
    edge = np.nonzero(np.diff(out[24].astype(int)))[0]
    assert 22 <= edge.min() and edge.max() <= 25  # the step stays near the middle


def test_missing_peer_venv_says_how_to_create_it(tmp_path):
    with pytest.raises(SystemExit, match="peer_env.sh"):
        peers.run_fer(tmp_path / "no-venv", np.zeros((2, 48, 48), np.uint8), tmp_path,
                      latency_faces=1, batch=2, threads=1, passes=1)
