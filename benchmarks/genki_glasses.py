"""Eyeglasses on ordinary photos: glasses models through `mien analyze`'s own pipeline on 390
GENKI-SZSL photos we labelled by eye (benchmarks/labels/genki_eyeglasses.csv; 36 wear glasses or
sunglasses). CelebA's held-out figure says how a model does on celebrity photos aligned the
CelebA way; this says how it does on webcam and snapshot faces our detector crops.

Each photo is detected once; the face that overlaps GENKI's own box best (IoU >= 0.3) is cut
with each model's framing by `mien analyze`'s own code (`Pipeline.crop`), and every model answers
on that face.

    python benchmarks/genki_glasses.py [--models glasses,runs/glasses-new] [--detector yunet]

MODELS: bundled names, run folders or .onnx files (default: the bundled `glasses`). Prints a
table and writes JSON (default benchmarks/results/genki_glasses.json).
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "benchmarks/labels/genki_eyeglasses.csv"
POSITIVE = "eyeglasses"


def read_labels(path: Path = LABELS) -> dict[str, int]:
    with open(path) as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {r["file"]: int(r["eyeglasses"]) for r in rows}


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


def score(y: np.ndarray, p_pos: np.ndarray) -> dict:
    pred = (p_pos >= 0.5).astype(int)
    tpr = float((pred[y == 1] == 1).mean())
    tnr = float((pred[y == 0] == 0).mean())
    return {"n": int(len(y)), "positives": int(y.sum()),
            "accuracy": round(float((pred == y).mean()), 4),
            "balanced_accuracy": round((tpr + tnr) / 2, 4), "recall": round(tpr, 4),
            "false_alarm_rate": round(1 - tnr, 4),
            "false_alarms": int(((pred == 1) & (y == 0)).sum()),
            "misses": int(((pred == 0) & (y == 1)).sum())}


def main() -> None:
    from _common import write_results  # benchmarks/ is sys.path[0] when run as a script

    from mien.inference.pipeline import framing_of
    from mien.models.loading import load_classifier, sha256_of

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="glasses", help="comma-separated models")
    parser.add_argument("--detector", default=None, help="default: mien's (YuNet, bundled)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "MIEN_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/genki_glasses.json")
    args = parser.parse_args()
    genki = args.data / "detection/genki_szsl"
    if not (genki / "GENKI-SZSL_labels.txt").is_file():
        raise SystemExit(f"{genki}: no GENKI-SZSL here; pass --data or set MIEN_DATA")

    labels = read_labels()
    files, faces, pipeline = detected_faces(genki, labels, args.detector)
    det = pipeline.detector.name
    found = [i for i, f in enumerate(faces) if f is not None]
    y = np.array([labels[files[i]] for i in found])
    rows = []
    for spec in [m.strip() for m in args.models.split(",") if m.strip()]:
        clf = load_classifier(spec)
        col = list(clf.labels).index(POSITIVE)
        crops = crops_for(pipeline, [faces[i] for i in found], framing_of(clf))
        p = np.asarray(clf.predict_proba(crops))[:, col]
        onnx = getattr(clf, "path", None)  # the file's digest lets a model card find its row
        rows.append({"model": spec, **score(y, p),
                     "sha256": sha256_of(onnx) if onnx is not None else None})

    print(f"{len(found)} of {len(files)} labelled GENKI photos with the face found ({det}); "
          f"{int(y.sum())} wear glasses; threshold 0.5")
    head = (f"{'model':<28} {'acc':>6} {'bal':>6} {'recall':>7} {'false alarms':>13} "
            f"{'misses':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['model']:<28} {r['accuracy']:>6.3f} {r['balanced_accuracy']:>6.3f} "
              f"{r['recall']:>7.3f} {r['false_alarms']:>6} ({r['false_alarm_rate']:.1%}) "
              f"{r['misses']:>7}")
    write_results(
        args.out, "genki_glasses",
        (f"MIEN_MODELS_DIR={os.environ['MIEN_MODELS_DIR']} "
         if os.environ.get("MIEN_MODELS_DIR") else "")
        + f"python benchmarks/genki_glasses.py --models {args.models}"
        + (f" --detector {args.detector}" if args.detector else ""),
        detector=det, labelled=len(files), found=len(found), results=rows)

if __name__ == "__main__":
    main()
