"""The pure parts of benchmarks/_genki.py (genki_glasses.py, genki_smile.py): our labels, GENKI's
boxes, the scores."""

import importlib.util
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
_spec = importlib.util.spec_from_file_location("genki_glasses", BENCH / "_genki.py")
genki_glasses = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(genki_glasses)


def test_labels_files_hold_the_parts_we_labelled():
    choose = genki_glasses.read_labels("eyeglasses", "choose")
    assert len(choose) == 390 and sum(choose.values()) == 36
    assert set(choose.values()) == {0, 1} and "file0001.jpg" in choose
    assert "file0061.jpg" not in choose  # left out: too dark to tell
    report = genki_glasses.read_labels("eyeglasses", "report")
    assert len(report) == 375 and sum(report.values()) == 59
    assert min(report) == "file0401.jpg" and max(report) == "file0800.jpg"
    assert genki_glasses.read_labels("eyeglasses") == {**choose, **report}
    smiling = genki_glasses.read_labels("smiling", "report")
    assert len(smiling) == 272 and sum(smiling.values()) == 170
    smiling_choose = genki_glasses.read_labels("smiling", "choose")
    assert len(smiling_choose) == 266 and sum(smiling_choose.values()) == 178
    assert max(smiling_choose) <= "file0400.jpg"


def test_score_counts_false_alarms_and_misses():
    y = np.array([1, 1, 0, 0, 0, 0])
    s = genki_glasses.score(y, np.array([0.9, 0.2, 0.6, 0.1, 0.1, 0.4]))
    assert (s["false_alarms"], s["misses"], s["positives"]) == (1, 1, 2)
    assert s["recall"] == 0.5 and s["false_alarm_rate"] == 0.25
    assert s["balanced_accuracy"] == 0.625 and s["accuracy"] == round(4 / 6, 4)
    assert s["auc"] == 0.75  # 6 of the 8 (positive, negative) pairs in order
    # recall >= 0.95 of 2 positives keeps both: threshold 0.2, above it 0.6 and 0.4 of 4
    assert s["threshold_at_recall_0.95"] == 0.2 and s["false_alarm_rate_at_recall_0.95"] == 0.5


def test_false_alarms_at_recall_allow_the_misses_the_recall_allows():
    y = np.array([1] * 20 + [0] * 4)
    p = np.r_[np.linspace(0.3, 0.99, 20), [0.2, 0.32, 0.5, 0.95]]
    thr, fa = genki_glasses.at_recall(y, p, 0.95)  # 19 of 20 must stay: one may fall below
    assert thr == p[1] and fa == 0.5  # 0.5 and 0.95 at or over it; 0.32 is just under


def test_genki_boxes_follow_the_label_lines(shared_data):
    genki = shared_data / "detection/genki_szsl"
    boxes = genki_glasses.genki_boxes(genki)
    assert len(boxes) == 3500
    x1, y1, x2, y2 = boxes["file0001.jpg"]  # first line: centre (90, 104), size 68
    assert (x1, y1, x2, y2) == (56.0, 70.0, 124.0, 138.0)
    assert set(genki_glasses.read_labels("eyeglasses")) <= set(boxes)
    assert set(genki_glasses.read_labels("smiling")) <= set(boxes)
