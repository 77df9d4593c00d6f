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
    text = peers.table([fast, row | {"model": "m2", "images": "blurred"}], classes)
    lines = text.splitlines()
    assert lines[0].split()[:7] == ["model", "images", "acc", "bal.acc", "macro-F1", "ms/face",
                                    "faces/s"]
    assert lines[2].split() == ["m1", "val", "0.6667", "0.6667", "0.6556", "2.00", "24",
                                "0.500", "1.000", "0.500"]
    assert lines[3].split()[5:7] == ["-", "-"]  # no timings for that row


def test_missing_peer_venv_says_how_to_create_it(tmp_path):
    with pytest.raises(SystemExit, match="peer_env.sh"):
        peers.run_fer(tmp_path / "no-venv", np.zeros((2, 48, 48), np.uint8), tmp_path,
                      latency_faces=1, batch=2, threads=1, passes=1)
