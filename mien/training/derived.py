"""A run folder made from a trained one by changing its model without training it again (input
blur, test-time augmentation, a shifted decision: tools/set_inference.py,
tools/shift_decision.py). Its validation figures are measured again on the changed model, so
`mien compare`, ensembles and cards never report the old model's scores for the new one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mien.evaluation.metrics import ClassificationMetrics
from mien.training import checkpoint as ckpt

COPIED = ("config.yaml", "split.json")  # what the validation split is rebuilt from
# Measured on the model before the change; the new model's are measured, not copied.
STALE = ("calibration",)


def measure_derived_run(run: str | Path, out: str | Path, change: str) -> ClassificationMetrics:
    """Copy `run`'s config and split into `out` (which holds the changed model.onnx) and write
    its metrics.json: `run`'s training facts, with `best_val_accuracy`, `confusion` and
    `num_val` of the changed model on the same validation images, and under `measured` the
    model's SHA-256 and `change`, what was changed."""
    from mien.evaluation.evaluate import evaluate, map_to_model_labels
    from mien.models.loading import load_classifier, sha256_of
    from mien.training.calibrate import default_data

    run, out = Path(run), Path(out)
    for name in COPIED:
        if (run / name).is_file():
            shutil.copyfile(run / name, out / name)
    model = out / ckpt.ONNX_FILE
    classifier = load_classifier(model)
    val, data_name = default_data(str(out))
    m = evaluate(classifier, map_to_model_labels(val, classifier.labels), batch_size=256).metrics
    source = run / "metrics.json"
    metrics = json.loads(source.read_text()) if source.is_file() else {}
    for key in STALE:
        metrics.pop(key, None)
    metrics.update(
        classes=list(m.labels), best_val_accuracy=m.accuracy, num_val=m.n,
        confusion=m.confusion_matrix.tolist(),
        measured={"model": model.name, "sha256": sha256_of(model), "data": data_name,
                  "change": change, "from": str(run)})
    ckpt.write_text(out / "metrics.json", json.dumps(metrics, indent=1))
    return m
