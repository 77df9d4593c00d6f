"""Attributes on ordinary photos: a model through `mien analyze`'s own pipeline on GENKI-SZSL
photos we labelled by eye (benchmarks/labels/genki_<attribute>.csv). A held-out figure says how a
model does on its dataset's crops; this says how it does on webcam and snapshot faces our
detector finds and crops. Shared by benchmarks/genki_glasses.py and benchmarks/genki_smile.py.

Each photo is detected once; the face that overlaps GENKI's own box best (IoU >= 0.3) is cut
with each model's framing by `mien analyze`'s own code (`Pipeline.crop`), and every model answers
on that face at threshold 0.5.

Parts: the photos are labelled in file order in blocks kept apart by use. `choose`
(file0001-file0400, eyeglasses and smiling) is what framings and thresholds may be chosen on;
`report` (file0401-file0800, eyeglasses and smiling) has never been used to choose anything and
gives the figures we quote.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# attribute (the labels file and its column) -> (the positive class of its models, default model)
ATTRIBUTES = {"eyeglasses": ("eyeglasses", "glasses"), "smiling": ("smile", "smile")}
PARTS = {"choose": (1, 400), "report": (401, 800), "all": (1, 3500)}


def labels_file(attribute: str) -> Path:
    return ROOT / f"benchmarks/labels/genki_{attribute}.csv"


def read_labels(attribute: str = "eyeglasses", part: str = "all") -> dict[str, int]:
    """file name -> 0/1 for the labelled photos of `part` (photos left unlabelled are absent)."""
    lo, hi = PARTS[part]
    with open(labels_file(attribute)) as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {r["file"]: int(r[attribute]) for r in rows
                if lo <= int(r["file"][4:8]) <= hi}


def genki_boxes(genki: Path) -> dict[str, tuple[float, float, float, float]]:
    """file name -> GENKI's face box (x1, y1, x2, y2) from its centre-and-size label lines."""
    files = sorted(p.name for p in (genki / "files").glob("*.jpg"))
    lines = [ln.split() for ln in (genki / "GENKI-SZSL_labels.txt").read_text().splitlines()
             if ln.strip()]
    out = {}
    for name, (cx, cy, size) in zip(files, lines, strict=True):
        h = float(size) / 2
        out[name] = (float(cx) - h, float(cy) - h, float(cx) + h, float(cy) + h)
    return out


def detected_faces(genki: Path, labels: dict[str, int], detector: str | None):
    """(files, [(photo, face at GENKI's box) or None], pipeline that found them)."""
    from mien.data.io import read_image
    from mien.inference.pipeline import Pipeline
    from mien.types import Box

    boxes = genki_boxes(genki)
    pipeline = Pipeline(detector, {})
    files, found = sorted(labels), []
    for name in files:
        image = read_image(genki / "files" / name, "rgb")
        truth = Box(*boxes[name])
        best = max(pipeline.detect(image), key=lambda f: f.box.iou(truth), default=None)
        ok = best is not None and best.box.iou(truth) >= 0.3
        found.append((image, best) if ok else None)
    return files, found, pipeline


def crops_for(pipeline, found, framing) -> list:
    """Each found face cut with `framing` as the pipeline cuts it (None where none was found)."""
    return [None if f is None else pipeline.crop(f[0], [f[1]], framing)[0] for f in found]


RECALL_TARGET = 0.95  # issue 20's operating point: false alarms at a recall of at least this


def at_recall(y: np.ndarray, p_pos: np.ndarray, recall: float = RECALL_TARGET
              ) -> tuple[float, float]:
    """(threshold, false-alarm rate) at the highest threshold that keeps at least `recall` of
    the positives: how well a model ranks, whatever threshold it ships with."""
    pos = np.sort(p_pos[y == 1])
    thr = float(pos[int(np.floor((1 - recall) * len(pos) + 1e-9))])
    return thr, float((p_pos[y == 0] >= thr).mean())


def score(y: np.ndarray, p_pos: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    pred = (p_pos >= 0.5).astype(int)
    tpr = float((pred[y == 1] == 1).mean())
    tnr = float((pred[y == 0] == 0).mean())
    thr, fa = at_recall(y, p_pos)
    return {"n": int(len(y)), "positives": int(y.sum()),
            "accuracy": round(float((pred == y).mean()), 4),
            "balanced_accuracy": round((tpr + tnr) / 2, 4), "recall": round(tpr, 4),
            "false_alarm_rate": round(1 - tnr, 4),
            "false_alarms": int(((pred == 1) & (y == 0)).sum()),
            "misses": int(((pred == 0) & (y == 1)).sum()),
            "auc": round(float(roc_auc_score(y, p_pos)), 4),
            f"threshold_at_recall_{RECALL_TARGET}": round(thr, 4),
            f"false_alarm_rate_at_recall_{RECALL_TARGET}": round(fa, 4)}


def main(attribute: str) -> None:
    from _common import write_results  # benchmarks/ is sys.path[0] when run as a script

    from mien.inference.pipeline import framing_of
    from mien.models.loading import load_classifier
    from mien.runfiles import sha256_of

    positive, default_model = ATTRIBUTES[attribute]
    script = f"benchmarks/genki_{default_model}.py"
    parser = argparse.ArgumentParser(description=f"{attribute} on GENKI photos labelled by eye")
    parser.add_argument("--models", default=default_model, help="comma-separated models")
    parser.add_argument("--part", default="report", choices=sorted(PARTS),
                        help="labelled photos to score (default: report, never chosen on)")
    parser.add_argument("--detector", default=None, help="default: mien's (YuNet, bundled)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "MIEN_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--out", type=Path,
                        default=ROOT / f"benchmarks/results/genki_{default_model}.json")
    args = parser.parse_args()
    genki = args.data / "detection/genki_szsl"
    if not (genki / "GENKI-SZSL_labels.txt").is_file():
        raise SystemExit(f"{genki}: no GENKI-SZSL here; pass --data or set MIEN_DATA")

    labels = read_labels(attribute, args.part)
    if not labels:
        raise SystemExit(f"{labels_file(attribute)}: no {attribute} labels in part {args.part}")
    files, faces, pipeline = detected_faces(genki, labels, args.detector)
    det = pipeline.detector.name
    found = [i for i, f in enumerate(faces) if f is not None]
    y = np.array([labels[files[i]] for i in found])
    rows = []
    for spec in [m.strip() for m in args.models.split(",") if m.strip()]:
        clf = load_classifier(spec)
        col = list(clf.labels).index(positive)
        crops = crops_for(pipeline, [faces[i] for i in found], framing_of(clf))
        p = np.asarray(clf.predict_proba(crops))[:, col]
        onnx = getattr(clf, "path", None)  # the file's digest lets a model card find its row
        rows.append({"model": spec, **score(y, p),
                     "sha256": sha256_of(onnx) if onnx is not None else None})

    print(f"{len(found)} of {len(files)} GENKI photos labelled for {attribute} (part "
          f"{args.part}) with the face found ({det}); {int(y.sum())} positive; threshold 0.5")
    head = (f"{'model':<28} {'acc':>6} {'bal':>6} {'recall':>7} {'false alarms':>13} "
            f"{'misses':>7} {'AUC':>6} {f'FA at recall>={RECALL_TARGET}':>20}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['model']:<28} {r['accuracy']:>6.3f} {r['balanced_accuracy']:>6.3f} "
              f"{r['recall']:>7.3f} {r['false_alarms']:>6} ({r['false_alarm_rate']:.1%}) "
              f"{r['misses']:>7} {r['auc']:>6.3f} "
              f"{r[f'false_alarm_rate_at_recall_{RECALL_TARGET}']:>20.1%}")
    write_results(
        args.out, f"genki_{default_model}",
        (f"MIEN_MODELS_DIR={os.environ['MIEN_MODELS_DIR']} "
         if os.environ.get("MIEN_MODELS_DIR") else "")
        + f"python {script} --models {args.models} --part {args.part}"
        + (f" --detector {args.detector}" if args.detector else ""),
        attribute=attribute, part=args.part, labels_file=str(labels_file(attribute).relative_to(
            ROOT)), detector=det, labelled=len(files), found=len(found), results=rows)
