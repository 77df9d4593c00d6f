"""How small a face the bundled classifiers can still judge: each model's validation images (as
its card measures them) shrunk to S px wide (area) and scaled back up (bilinear), the detail a
face crop S px wide in a photo still holds, for S in --sizes. Accuracy and balanced accuracy per
model and size, next to the full-size figures; the smallest size where every model keeps most of
its accuracy is what `mien.inference.pipeline.MIN_JUDGED_FACE` is chosen from.

    python benchmarks/small_faces.py [--sizes 6,8,10,12,16,20,24] [--models expression,smile]

Prints a table and writes JSON (default benchmarks/results/small_faces.json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _common import write_results  # noqa: E402  (benchmarks/ is sys.path[0])

ROOT = Path(__file__).resolve().parents[1]


def shrunk(image: np.ndarray, side: int) -> np.ndarray:
    """`image` down to `side` px wide (height in proportion) and back to its own size."""
    import cv2

    h, w = image.shape[:2]
    small = cv2.resize(image, (side, max(1, round(side * h / w))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def main(argv: list[str] | None = None) -> None:
    from mien.data.datasets import ImageDataset
    from mien.evaluation.evaluate import evaluate
    from mien.models.cards import installed_models, validation_dataset
    from mien.models.loading import OnnxClassifier

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="6,8,10,12,16,20,24")
    parser.add_argument("--models", default=None, help="comma list [default: every bundled]")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/small_faces.json")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted = args.models.split(",") if args.models else None

    rows = []
    for model in installed_models():
        if wanted and model.name not in wanted:
            continue
        ds = validation_dataset(model.card)
        images = [ds.load(i, "rgb") for i in range(len(ds))]
        clf = OnnxClassifier(model.file, name=model.name)
        for side in [None, *sizes]:
            arrays = np.stack([im if side is None else shrunk(im, side) for im in images])
            degraded = ImageDataset(ds.classes, ds.sources, ds.labels, arrays=arrays, name=ds.name)
            m = evaluate(clf, degraded, batch_size=256).metrics
            rows.append({"model": model.name, "face_px": side or images[0].shape[1],
                         "full_size": side is None, "images": m.n,
                         "accuracy": round(m.accuracy, 4),
                         "balanced_accuracy": round(m.balanced_accuracy, 4)})
            print(f"  {model.name} {side or 'full'}: {m.accuracy:.3f}", file=sys.stderr)

    print("model | face px | accuracy | balanced")
    print("--- | --- | --- | ---")
    for r in rows:
        size = f"{r['face_px']} (full)" if r["full_size"] else str(r["face_px"])
        print(f"{r['model']} | {size} | {r['accuracy']:.3f} | {r['balanced_accuracy']:.3f}")
    write_results(args.out, "small_faces",
                  "python benchmarks/small_faces.py " + " ".join(argv or sys.argv[1:]),
                  sizes=sizes, results=rows)


if __name__ == "__main__":
    main()
