"""Which face framing serves each model best on faces the detector finds in real photos.

A model reads the square `mien analyze` cuts around a detected face: the box's longer side x
(1 + margin), eyes levelled when aligning. The framing is stored with each model (`mien train
--framing-margin/--framing-align`); this measures which one to store. Every photo is detected
once (YuNet), its largest face is cut with each framing of the grid by the pipeline's own code
(`Pipeline.crop`) and classified. Scores are on the photos where a face was found (how many is
printed); the model's own framing is marked *.

Photo sets, by task: glasses -> CelebA held-out (the glasses card's 2,000, the aligned photos as
on disk) and the 390 GENKI photos labelled in labels/genki_eyeglasses.csv; smile -> SMILEs
held-out (64x64 crops: the detector misses some); expression -> FER2013 val (48x48 crops).

    python benchmarks/framing.py [--models glasses,smile]
        [--limit N] [--detector yunet] [--out FILE]

MODELS: bundled names, or MODEL=TASK for a run folder or .onnx file (TASK: glasses, smile or
expression; left out, the task whose bundled labels equal the model's). `--limit N` scores N
photos of each set (a seeded sample across classes). Writes benchmarks/results/framing.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MARGINS = (0.0, 0.1, 0.2, 0.3, 0.4)
ALIGNS = (True, False)
TASK_SETS = {"glasses": ("CelebA held-out", "GENKI labelled"), "smile": ("SMILEs held-out",),
             "expression": ("FER2013 val",)}


def photo_set(task: str, name: str, data: Path):
    """The labelled photos of one set, as an ImageDataset."""
    from mien.data.datasets import ImageDataset
    from mien.models.cards import read_card, validation_dataset

    if name == "GENKI labelled":
        from _genki import ATTRIBUTES, read_labels  # benchmarks/ is sys.path[0]

        labels = read_labels("eyeglasses", "choose")  # the part kept for choosing
        positive = ATTRIBUTES["eyeglasses"][0]
        files = sorted(labels)
        return ImageDataset(("no_" + positive, positive),
                            [str(data / "detection/genki_szsl/files" / f) for f in files],
                            np.array([labels[f] for f in files]), name=name)
    card = read_card(task)
    # the held-out files as they are on disk, not the fixed re-framing the card scores
    raw = {**card, "data": {k: v for k, v in card["data"].items() if k != "reframe"}}
    return validation_dataset(raw, data)


def task_of(spec: str, labels) -> tuple[str, str]:
    """(model spec, task) from `NAME` or `MODEL=TASK`."""
    from mien.models.cards import read_card

    model, _, task = spec.partition("=")
    task = task or (model if model in TASK_SETS else "")
    if not task:
        task = next((t for t in TASK_SETS if set(read_card(t)["labels"]) == set(labels)), "")
    if task not in TASK_SETS:
        raise SystemExit(f"{model}: no photo set for its labels {list(labels)}; give "
                         f"{model}=TASK with TASK one of {', '.join(TASK_SETS)}")
    return model, task


def sample(n: int, limit: int | None, seed: int = 0) -> np.ndarray:
    """Indices of the photos to score: all, or `limit` drawn without replacement (sorted)."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def grid_scores(pipeline, clf, photos, faces, y) -> list[dict]:
    """Accuracy and balanced accuracy of `clf` per framing of the grid, on `photos` (uint8
    RGB) cut at `faces` (one per photo)."""
    from mien.data.preprocess import Framing
    from mien.evaluation.metrics import classification_metrics

    cells = []
    for margin in MARGINS:
        for align in ALIGNS:
            framing = Framing(margin, align)
            crops = [pipeline.crop(p, [f], framing)[0] for p, f in zip(photos, faces, strict=True)]
            pred = np.asarray(clf.predict_proba(crops)).argmax(axis=1)
            m = classification_metrics(y, pred, clf.labels)
            cells.append({"margin": margin, "align": align, "accuracy": round(m.accuracy, 4),
                          "balanced_accuracy": round(m.balanced_accuracy, 4)})
    return cells


def measure(spec: str, task: str, set_name: str, clf, detector: str, data: Path,
            limit: int | None) -> dict:
    from mien.evaluation.evaluate import map_to_model_labels
    from mien.inference.pipeline import Pipeline, framing_of

    ds = map_to_model_labels(photo_set(task, set_name, data), clf.labels)
    pipeline = Pipeline(detector, {})
    start = time.perf_counter()
    photos, faces, y = [], [], []
    chosen = sample(len(ds), limit)
    for i in chosen:
        photo = ds.load(int(i), "rgb")
        found = pipeline.detect(photo)
        if found:
            photos.append(photo)
            faces.append(max(found, key=lambda f: f.box.area))
            y.append(int(ds.labels[i]))
    cells = grid_scores(pipeline, clf, photos, faces, np.array(y)) if photos else []
    return {"model": spec, "task": task, "set": set_name, "photos": len(chosen),
            "found": len(photos), "model_framing": framing_of(clf).to_dict(),
            "cells": cells, "seconds": round(time.perf_counter() - start, 1)}


def print_result(r: dict, detector: str) -> None:
    own = r["model_framing"]
    print(f"\n{r['model']} on {r['set']}: a face found in {r['found']} of {r['photos']} photos "
          f"({detector}); * the model's own framing")
    if not r["cells"]:
        return
    by = {(c["margin"], c["align"]): c for c in r["cells"]}
    print(f"{'margin':<8} {'align on: acc':>14} {'bal':>6}   {'align off: acc':>14} {'bal':>6}")
    for margin in MARGINS:
        cols = []
        for align in ALIGNS:
            c = by[(margin, align)]
            mark = "*" if (own["margin"], own["align"]) == (margin, align) else " "
            cols.append(f"{c['accuracy']:>13.4f}{mark} {c['balanced_accuracy']:>6.4f}")
        print(f"{margin:<8} {cols[0]}   {cols[1]}")
    best = max(r["cells"], key=lambda c: (c["balanced_accuracy"], c["accuracy"]))
    print(f"best balanced accuracy: margin {best['margin']}, align "
          f"{'on' if best['align'] else 'off'} ({best['balanced_accuracy']:.4f})")


def main() -> None:
    from _common import write_results  # benchmarks/ is sys.path[0] when run as a script

    from mien.detection import default_detector_name
    from mien.models.loading import load_classifier

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="glasses,smile,expression",
                        help="comma-separated: bundled names or MODEL=TASK")
    parser.add_argument("--detector", default=None, help="default: mien's (YuNet, bundled)")
    parser.add_argument("--limit", type=int, default=None, help="photos per set")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "MIEN_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/framing.json")
    args = parser.parse_args()
    detector = args.detector or default_detector_name()

    rows = []
    for spec in [m.strip() for m in args.models.split(",") if m.strip()]:
        model = spec.partition("=")[0]
        clf = load_classifier(model)
        model, task = task_of(spec, clf.labels)
        for set_name in TASK_SETS[task]:
            rows.append(measure(model, task, set_name, clf, detector, args.data, args.limit))
            print_result(rows[-1], detector)
    write_results(
        args.out, "framing",
        (f"MIEN_MODELS_DIR={os.environ['MIEN_MODELS_DIR']} "
         if os.environ.get("MIEN_MODELS_DIR") else "")
        + f"python benchmarks/framing.py --models {args.models}"
        + (f" --detector {args.detector}" if args.detector else "")
        + (f" --limit {args.limit}" if args.limit else ""),
        detector=detector, margins=list(MARGINS), results=rows)


if __name__ == "__main__":
    main()
