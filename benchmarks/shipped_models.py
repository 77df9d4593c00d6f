"""Speed and accuracy of the classifiers shipped with mien (mien/models/weights/).

Per bundled model, with ONNX Runtime on the CPU:
- ms/face at batch 1 on 1 thread: the network alone on a preprocessed face (both passes for a
  model with flip test-time augmentation, as its predictions do), and end to end
  from a 112x112 uint8 face crop (resize, gray/rgb, normalise + network), median of many calls;
- faces/s batched (batches of 64, the pipeline's default) on 2 threads, network alone, median
  batch time; and per batch size on 1 thread;
- both as wall time and as CPU time of this process: on a shared machine the wall time of a
  long call includes other jobs' turns, the CPU time tells what an idle core would take;
- accuracy (and balanced accuracy) on the model's validation data as its card describes it,
  through `mien.evaluation.evaluate`, next to the figure the card claims.

On real photos (`--photos N`, default 300): the default detector (or `--detector`) + aligner +
the bundled models (`mien.inference.Pipeline`, as `mien analyze` runs them) over the first N
GENKI-SZSL photos (faces mostly smiling or neutral, no attribute labels) and the 4 VOC photos:
faces found, how the predictions spread, and how often `smile` agrees with `expression` == happy.

    python benchmarks/shipped_models.py [--models expression,smile] [--seconds 3] [--no-accuracy]
                                        [--photos 300] [--detector yunet]

Targets of issue #7: <= 1 ms/face and >= 2,000 faces/s. Prints a table and writes JSON
(default benchmarks/results/shipped_models.json). The machine may be shared with other jobs:
medians are reported, and the load average at the start is recorded beside them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mien.models.cards import installed_models, validation_dataset
from mien.models.loading import OnnxClassifier

BATCH = 64  # the inference pipeline's default batch of faces
CROP = 112  # side of the aligned face crop the inference pipeline hands to a classifier


def session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def median_seconds(fn, seconds: float, min_runs: int = 20) -> tuple[float, float, int]:
    """Median wall seconds and median CPU seconds (this process, all threads) per call of `fn`
    over about `seconds` after warm-up, and the number of calls.

    On a machine shared with other jobs the wall time of a long call includes the time other
    processes ran; the CPU time does not, so it tells what the model costs on an idle core."""
    for _ in range(3):
        fn()
    walls: list[float] = []
    cpus: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(walls) < min_runs:
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), len(walls)


def measure(model, seconds: float, accuracy: bool) -> dict:
    card = model.card
    clf1 = OnnxClassifier(model.file, name=model.name)
    clf1._session = session(model.file, 1)  # the classifier as analyze runs it, on 1 thread
    sess1, sess2 = session(model.file, 1), session(model.file, 2)
    name_in = sess1.get_inputs()[0].name
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (CROP, CROP, 3), dtype=np.uint8)
    x1 = clf1.preprocess([crop])
    xb = np.repeat(clf1.preprocess([crop]), BATCH, axis=0)
    xb += rng.normal(0, 0.05, xb.shape).astype(np.float32)

    # A model with flip test-time augmentation runs twice per face (the face and its mirror):
    # the network-alone timings count both passes, as predict_proba does.
    mirror = clf1.tta == "flip"

    def net(sess, x):
        out = sess.run(None, {name_in: x})
        return sess.run(None, {name_in: np.ascontiguousarray(x[..., ::-1])}) if mirror else out

    net1, net1_cpu, n1 = median_seconds(lambda: net(sess1, x1), seconds)
    e2e1, e2e1_cpu, _ = median_seconds(lambda: clf1.predict_proba([crop]), seconds)
    batch2, batch2_cpu, nb = median_seconds(lambda: net(sess2, xb), seconds, min_runs=5)
    sweep = {}
    for b in (1, 8, 32, 128):  # 1 thread, CPU time: which batch size suits the model
        xs = xb[:b]
        _, cpu, _ = median_seconds(lambda xs=xs: net(sess1, xs), seconds / 4, min_runs=5)
        sweep[str(b)] = round(b / cpu, 1)
    row = {
        "model": model.name, "arch": card["arch"], "parameters": card.get("parameters"),
        "input": f"{card['input']['size'][0]}x{card['input']['size'][1]} {card['input']['color']}",
        "onnx_kib": round(model.size_bytes / 1024, 1),
        "tta": clf1.tta,
        "ms_per_face_1thread": round(net1 * 1e3, 4),
        "ms_per_face_1thread_cpu": round(net1_cpu * 1e3, 4),
        "ms_per_face_1thread_from_crop": round(e2e1 * 1e3, 4),
        "ms_per_face_1thread_from_crop_cpu": round(e2e1_cpu * 1e3, 4),
        "batch1_calls": n1,
        "faces_per_second_2threads": round(BATCH / batch2, 1),
        # CPU time of both threads over 2: the wall time the batch would take on 2 idle cores
        "faces_per_second_2threads_cpu": round(2 * BATCH / batch2_cpu, 1),
        "batch_calls": nb,
        "faces_per_second_1thread_cpu_by_batch": sweep,
        "card_accuracy": card["validation"]["accuracy"],
        "card_balanced_accuracy": card["validation"]["balanced_accuracy"],
    }
    if accuracy:
        from mien.evaluation.evaluate import evaluate

        try:
            ds = validation_dataset(card)
        except Exception as exc:  # data absent on this machine: speed only
            row["accuracy_error"] = str(exc)
        else:
            clf = OnnxClassifier(model.file, name=model.name)
            result = evaluate(clf, ds, batch_size=256)
            row.update(accuracy=round(result.metrics.accuracy, 4),
                       balanced_accuracy=round(result.metrics.balanced_accuracy, 4),
                       val_images=result.metrics.n,
                       val_description=card["data"]["validation"])
    return row


def real_photos(n: int, detector: str | None = None) -> dict:
    """Predictions of the bundled models on faces our own pipeline finds in real photos."""
    from collections import Counter

    from mien.inference.pipeline import Pipeline
    from mien.models.cards import default_data_root

    root = default_data_root() / "detection"
    genki = sorted((root / "genki_szsl" / "files").glob("*.jpg"))[:n]
    voc = sorted((root / "voc_faces").glob("*.jpg"))
    if not genki:
        return {"error": f"no GENKI photos under {root}"}
    pipe = Pipeline(detector)
    out = {"detector": pipe.detector.name}
    for label, files in (("genki_szsl", genki), ("voc_faces", voc)):
        counts: dict[str, Counter] = {a: Counter() for a in pipe.attributes}
        photos_with_face = faces = agree = both = 0
        start = time.perf_counter()
        for f in files:
            found = pipe.analyze(f)
            photos_with_face += bool(found)
            for face in found[:1] if label == "genki_szsl" else found:  # GENKI: one face each
                faces += 1
                for a, pred in face.attributes.items():
                    counts[a][pred.label] += 1
                if {"smile", "expression"} <= set(face.attributes):
                    both += 1
                    agree += ((face.attributes["smile"].label == "smile")
                              == (face.attributes["expression"].label == "happy"))
        out[label] = {
            "photos": len(files), "photos_with_face": photos_with_face, "faces": faces,
            "seconds": round(time.perf_counter() - start, 1),
            "predictions": {a: dict(c.most_common()) for a, c in counts.items()},
            "smile_agrees_with_expression_happy": round(agree / both, 4) if both else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: all)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    parser.add_argument("--no-accuracy", action="store_true", help="speed only")
    parser.add_argument("--photos", type=int, default=300, help="GENKI photos (0: none)")
    parser.add_argument("--detector", default=None,
                        help="detector for the photos (default: mien's, YuNet, bundled)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "shipped_models.json")
    args = parser.parse_args()
    wanted = [m for m in args.models.split(",") if m]
    models = [m for m in installed_models() if not wanted or m.name in wanted]
    if not models:
        raise SystemExit("no bundled models found in mien/models/weights")
    load = os.getloadavg()[0]
    rows = [measure(m, args.seconds, not args.no_accuracy) for m in models]

    print("ms/face: batch 1, 1 thread, wall (cpu); crop: from a 112x112 crop; faces/s: batch "
          f"{BATCH}, 2 threads, wall (cpu-time estimate); flip TTA models count both passes")
    head = (f"{'model':<11} {'input':<10} {'params':>8} {'KiB':>6} {'ms/face':>14} "
            f"{'ms(crop)':>14} {'faces/s':>14} {'val acc':>8} {'bal acc':>8} {'card acc':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        acc = f"{r['accuracy']:.4f}" if "accuracy" in r else "-"
        bal = f"{r['balanced_accuracy']:.4f}" if "balanced_accuracy" in r else "-"
        ms = f"{r['ms_per_face_1thread']:.3f} ({r['ms_per_face_1thread_cpu']:.3f})"
        crop = (f"{r['ms_per_face_1thread_from_crop']:.3f} "
                f"({r['ms_per_face_1thread_from_crop_cpu']:.3f})")
        fps = f"{r['faces_per_second_2threads']:.0f} ({r['faces_per_second_2threads_cpu']:.0f})"
        print(f"{r['model']:<11} {r['input']:<10} {r['parameters'] or 0:>8} {r['onnx_kib']:>6.0f} "
              f"{ms:>14} {crop:>14} {fps:>14} {acc:>8} {bal:>8} {r['card_accuracy']:>8.4f}")
    print(f"targets: <= 1 ms/face, >= 2000 faces/s; load average at start {load:.1f} "
          f"on {os.cpu_count()} CPUs")
    out = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "load_average_1min": round(load, 2),
                    "onnxruntime": ort.__version__},
        "batch": BATCH, "seconds_per_measurement": args.seconds,
        "targets": {"ms_per_face": 1.0, "faces_per_second": 2000},
        "models": rows,
    }
    if args.photos:
        out["real_photos"] = photos = real_photos(args.photos, args.detector)
        for label in ("genki_szsl", "voc_faces"):
            r = photos.get(label)
            if r:
                print(f"{label}: {r['photos_with_face']}/{r['photos']} photos with a face, "
                      f"{r['faces']} faces; smile agrees with expression=happy on "
                      f"{r['smile_agrees_with_expression_happy']}")
                for a, c in r["predictions"].items():
                    print(f"  {a}: {c}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
