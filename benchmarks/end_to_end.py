"""The bundled models on faces our own pipeline crops, against the same models on the datasets'
crops: does a model still score when the detector, the aligner and the margin frame the face?

For each bundled model, its card's validation images are read as they are on disk (CelebA's
aligned photos for `glasses`, not the fixed re-framing it was trained and carded on; SMILEs'
64x64 crops; FER2013's 48x48 faces) and run through `mien.inference.Pipeline` exactly as
`mien analyze` runs it. The largest face found in an image is the one scored. Beside it, the model
scores the same images the way its card does (no detector), on all of them and on the subset where
a face was found, so the two figures compare like for like.

    python benchmarks/end_to_end.py [--models glasses,smile] [--detector yunet] [--limit N]

The detector is mien's default (YuNet, bundled) unless --detector names another. Prints a table
and writes JSON (default benchmarks/results/end_to_end.json).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def scores(y: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict:
    from mien.evaluation.metrics import classification_metrics

    if len(y) == 0:
        return {"n": 0}
    m = classification_metrics(y, pred, labels)
    return {"n": m.n, "accuracy": round(m.accuracy, 4),
            "balanced_accuracy": round(m.balanced_accuracy, 4)}


def measure(name: str, detector: str | None, limit: int | None) -> dict:
    from mien.inference.pipeline import Pipeline
    from mien.models.cards import read_card, validation_dataset
    from mien.models.loading import load_classifier

    card = read_card(name)
    raw = {**card, "data": {k: v for k, v in card["data"].items() if k != "reframe"}}
    ds = validation_dataset(raw)  # the held-out files, as they are on disk
    carded = validation_dataset(card)  # ... and as the card scores them
    n = min(len(ds), limit or len(ds))
    clf = load_classifier(name)
    labels = list(clf.labels)
    # dataset class index -> model class index (the same names; order may differ)
    to_model = np.array([labels.index(c) for c in ds.classes])
    y = to_model[ds.labels[:n]]

    pipe = Pipeline(detector, attributes={name: clf})
    pred = np.full(n, -1)
    start = time.perf_counter()
    for i in range(n):
        faces = pipe.analyze(ds.load(i, "rgb"))
        if faces:
            face = max(faces, key=lambda f: f.box.area)
            pred[i] = labels.index(face.attributes[name].label)
    seconds = time.perf_counter() - start
    direct = np.concatenate([clf.predict_proba([carded.load(i, "rgb") for i in range(s, min(
        s + 256, n))]).argmax(1) for s in range(0, n, 256)])
    found = pred >= 0
    return {
        "model": name, "detector": pipe.detector.name, "images": n,
        "validation": card["data"].get("validation_name"),
        "faces_found": int(found.sum()), "found_rate": round(float(found.mean()), 4),
        "pipeline_on_found": scores(y[found], pred[found], labels),
        "card_crop_on_found": scores(y[found], direct[found], labels),
        "card_crop_on_all": scores(y, direct, labels),
        "seconds": round(seconds, 1),
    }


def _fmt(s: dict, key: str) -> str:
    return f"{s[key]:.4f}" if key in s else "-"


def main() -> None:
    from _common import write_results  # benchmarks/ is sys.path[0] when run as a script

    from mien.models.loading import bundled_models

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: all)")
    parser.add_argument("--detector", default=None, help="default: mien's (YuNet, bundled)")
    parser.add_argument("--limit", type=int, default=None, help="first N validation images")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/end_to_end.json")
    args = parser.parse_args()
    wanted = [m for m in args.models.split(",") if m] or bundled_models()
    rows = [measure(m, args.detector, args.limit) for m in wanted]

    head = (f"{'model':<11} {'detector':<8} {'images':>6} {'found':>7} {'acc pipe':>9} "
            f"{'acc card':>9} {'bal pipe':>9} {'bal card':>9} {'card, all':>10}")
    print("pipe: the detector's aligned crop; card: the model on the dataset's own crop; both on "
          "the images where a face was found (card, all: every image)")
    print(head)
    print("-" * len(head))
    for r in rows:
        p, c, a = r["pipeline_on_found"], r["card_crop_on_found"], r["card_crop_on_all"]
        print(f"{r['model']:<11} {r['detector']:<8} {r['images']:>6} {r['found_rate']:>7.1%} "
              f"{_fmt(p, 'accuracy'):>9} {_fmt(c, 'accuracy'):>9} "
              f"{_fmt(p, 'balanced_accuracy'):>9} {_fmt(c, 'balanced_accuracy'):>9} "
              f"{_fmt(a, 'accuracy'):>10}")
    write_results(args.out, "end_to_end", "python benchmarks/end_to_end.py " + " ".join(
        f"--{k} {v}" for k, v in (("models", args.models), ("detector", args.detector),
                                  ("limit", args.limit)) if v), results=rows)


if __name__ == "__main__":
    main()
