"""Face detectors on real photos: recall at IoU >= 0.4, false detections per image, and median
detect() time per photo at its native size with 1 and 2 threads (decoding excluded).

    python benchmarks/detection.py [--limit 1000] [--detectors haar,yunet,mtcnn] [--out PATH]

Data: ../shared/data (or $MIEN_DATA): detection/voc_faces (4 group photos, 18 faces) and the
first --limit GENKI-SZSL photos (one labelled face each: other faces in a photo count as false
detections here, so that column is an upper bound). YuNet's file is read from ../shared/models
(or $MIEN_MODELS_DIR). Prints a table and writes JSON (default benchmarks/results/detection.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
from _common import set_threads  # noqa: E402  (benchmarks/ is sys.path[0])

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    from mien.detection import create_detector, list_detectors
    from mien.detection.base import detector_entry
    from mien.detection.evaluate import evaluate_detector, read_genki_szsl, read_imglab

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("MIEN_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--limit", type=int, default=1000, help="GENKI-SZSL photos to use")
    parser.add_argument("--detectors", default=None, help="comma list [default: all available]")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--timing-limit", type=int, default=200,
                        help="photos per set timed at each thread count above 1")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/detection.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("MIEN_MODELS_DIR", str(ROOT.parent / "shared" / "models"))

    sets = {
        "voc_faces": read_imglab(args.data / "detection/voc_faces/boxes.xml"),
        "genki_szsl": read_genki_szsl(args.data / "detection/genki_szsl", limit=args.limit),
    }
    names = args.detectors.split(",") if args.detectors else list_detectors(available_only=True)
    threads = [int(t) for t in args.threads.split(",")]
    results = []
    for name in names:
        if not detector_entry(name).available():
            print(f"skip {name}: not installed here", file=sys.stderr)
            continue
        detector = create_detector(name)
        for set_name, items in sets.items():
            # Accuracy and 1-thread times over every photo; each further thread count is timed
            # on the first --timing-limit photos, compared with 1 thread on those same photos.
            set_threads(1)
            detector.detect(np.zeros((240, 320, 3), np.uint8))  # warm up
            score = evaluate_detector(detector, items)
            k = min(len(items), args.timing_limit)
            row = {"detector": name, "set": set_name, "images": score.images,
                   "faces": score.faces, "found": score.found, "recall": round(score.recall, 4),
                   "false_per_image": round(score.false_per_image, 4),
                   "median_ms_1_thread_all": round(score.median_ms, 2), "timed_images": k,
                   "median_ms_1_thread": round(statistics.median(score.times_ms[:k]), 2)}
            for n in threads:
                if n == 1:
                    continue
                set_threads(n)
                timed = evaluate_detector(detector, items[:k])
                row[f"median_ms_{n}_threads"] = round(timed.median_ms, 2)
            set_threads(1)
            print(f"  {name} {set_name}: recall {score.recall:.3f}, "
                  f"{row['median_ms_1_thread']:.1f} ms", file=sys.stderr)
            results.append(row)

    time_cols = [k for k in results[0] if k.startswith("median_ms") and not k.endswith("_all")]
    header = ["detector", "set", "images", "faces", "recall", "false/img", *time_cols]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in results:
        cells = [r["detector"], r["set"], r["images"], r["faces"], f"{r['recall']:.3f}",
                 f"{r['false_per_image']:.3f}", *(f"{r[c]:.1f}" for c in time_cols)]
        print(" | ".join(str(c) for c in cells))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "detection",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2)},
        "iou": 0.4,
        "genki_limit": args.limit,
        "command": "python benchmarks/detection.py " + " ".join(argv or sys.argv[1:]),
        "results": results,
    }, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
