"""tools/set_inference.py and tools/shift_decision.py change a run's model without training:
the new folder's metrics.json must hold the new model's validation scores, not the old ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from mien.evaluation.evaluate import evaluate, map_to_model_labels
from mien.models.loading import load_classifier, sha256_of
from mien.training.calibrate import default_data

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def run_tool(name: str, *args) -> str:
    done = subprocess.run([sys.executable, str(TOOLS / name), *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def measured(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["measured"]["sha256"] == sha256_of(out / "model.onnx")
    assert "calibration" not in metrics  # fitted to the outputs of the model before the change
    return metrics


def test_shift_decision_scores_the_shifted_model(base_run, tmp_path):
    out = tmp_path / "shifted"
    # A shift this large makes every answer "horizontal": accuracy is that class's share.
    printed = run_tool("shift_decision.py", base_run, out, "--label", "horizontal",
                       "--shift", "100")
    before = json.loads((base_run / "metrics.json").read_text())
    truth = np.array(before["confusion"]).sum(axis=1)  # validation images per class
    after = measured(out)
    assert after["confusion"] == [[truth[0], 0], [truth[1], 0]]
    assert after["best_val_accuracy"] == truth[0] / truth.sum() != before["best_val_accuracy"]
    assert after["num_val"] == before["num_val"] and after["history"] == before["history"]
    assert after["measured"]["change"] == "horizontal logit + 100.0"
    assert f"validation accuracy {after['best_val_accuracy']:.4f}" in printed


def test_set_inference_scores_the_changed_model(base_run, tmp_path):
    out = tmp_path / "blurred"
    run_tool("set_inference.py", base_run, out, "--blur-sigma", "6", "--tta", "flip")
    after = measured(out)
    classifier = load_classifier(out / "model.onnx")
    assert classifier.tta == "flip" and classifier.preprocess.blur_sigma == 6
    val, _ = default_data(str(base_run))
    expected = evaluate(classifier, map_to_model_labels(val, classifier.labels)).metrics
    assert after["best_val_accuracy"] == expected.accuracy
    assert after["confusion"] == expected.confusion_matrix.tolist()
    assert "tta flip" in after["measured"]["change"]
