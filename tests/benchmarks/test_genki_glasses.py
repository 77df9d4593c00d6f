"""The pure parts of benchmarks/genki_glasses.py: our labels, GENKI's boxes, the scores."""

import importlib.util
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
_spec = importlib.util.spec_from_file_location("genki_glasses", BENCH / "genki_glasses.py")
genki_glasses = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(genki_glasses)


def test_labels_file_holds_390_photos_36_with_glasses():
    labels = genki_glasses.read_labels()
    assert len(labels) == 390 and sum(labels.values()) == 36
    assert set(labels.values()) == {0, 1} and "file0001.jpg" in labels
    assert "file0061.jpg" not in labels  # left out: too dark to tell


def test_score_counts_false_alarms_and_misses():
    y = np.array([1, 1, 0, 0, 0, 0])
    s = genki_glasses.score(y, np.array([0.9, 0.2, 0.6, 0.1, 0.1, 0.4]))
    assert (s["false_alarms"], s["misses"], s["positives"]) == (1, 1, 2)
    assert s["recall"] == 0.5 and s["false_alarm_rate"] == 0.25
    assert s["balanced_accuracy"] == 0.625 and s["accuracy"] == round(4 / 6, 4)


def test_genki_boxes_follow_the_label_lines(shared_data):
    genki = shared_data / "detection/genki_szsl"
    boxes = genki_glasses.genki_boxes(genki)
    assert len(boxes) == 3500
    x1, y1, x2, y2 = boxes["file0001.jpg"]  # first line: centre (90, 104), size 68
    assert (x1, y1, x2, y2) == (56.0, 70.0, 124.0, 138.0)
    assert set(genki_glasses.read_labels()) <= set(boxes)
