"""Face detectors on real photos: recall at IoU >= 0.4, false detections per image, and median
detect() time per photo at its native size with 1 and 2 threads (decoding excluded), each
detector at mien's defaults.

    python benchmarks/detection.py [--limit 1000] [--detectors haar,yunet,mtcnn] [--out PATH]
    python benchmarks/detection.py --grid [--min-faces 1,8,12,20] [--fine-scales none,1,1.5,2]

Data: ../shared/data (or $MIEN_DATA): detection/voc_faces (4 group photos, 18 faces), the
first --limit GENKI-SZSL photos (one labelled face each: other faces in a photo count as false
detections, except the 64 other real faces of file0001-file1000 labelled by eye in
benchmarks/labels/genki_szsl_other_faces.csv, which count neither way) and --collages group
photos built from the
other GENKI-SZSL photos (`mien.detection.evaluate.write_collages`, seeded by --seed: 40 faces of
8 to 60 px on 1600x1200 to 4000x3000 canvases; written under .mien-cache/). `--grid` runs
YuNet alone on the collages and GENKI-SZSL at each min_face and fine-view scale (the second pass
at that multiple of the photo's size; `none`: the whole view only), 1 thread. Prints a table and
writes JSON (default benchmarks/results/detection.json, with --grid detection_grid.json).
"""

from __future__ import annotations

import argparse
import csv
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
    parser.add_argument("--collages", type=int, default=24, help="group photos to build")
    parser.add_argument("--seed", type=int, default=0, help="seed of the group photos")
    parser.add_argument("--grid", action="store_true", help="YuNet over --min-faces x "
                        "--fine-scales instead of every detector at its defaults")
    parser.add_argument("--min-faces", default="1,8,12,20")
    parser.add_argument("--fine-scales", default="none,1,1.5,2")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or ROOT / "benchmarks/results" / (
        "detection_grid.json" if args.grid else "detection.json")

    genki = read_genki_szsl(args.data / "detection/genki_szsl")
    ignore = other_faces(args.data / "detection/genki_szsl/files")
    sets = {
        "voc_faces": read_imglab(args.data / "detection/voc_faces/boxes.xml"),
        "genki_szsl": genki[: args.limit],
        "collages": collages(genki[args.limit:], args.collages, args.seed),
    }
    if args.grid:
        del sets["voc_faces"]
        results = grid(sets, ignore, [int(m) for m in args.min_faces.split(",")],
                       [None if f == "none" else float(f) for f in args.fine_scales.split(",")])
        write(out, argv, args, results, ["min_face", "fine_scale", "set", "images", "faces",
                                         "recall", "false/img", "median_ms_1_thread"])
        return
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
            score = evaluate_detector(detector, items, ignore=ignore)
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
                timed = evaluate_detector(detector, items[:k], ignore=ignore)
                row[f"median_ms_{n}_threads"] = round(timed.median_ms, 2)
            set_threads(1)
            print(f"  {name} {set_name}: recall {score.recall:.3f}, "
                  f"{row['median_ms_1_thread']:.1f} ms", file=sys.stderr)
            results.append(row)

    time_cols = [k for k in results[0] if k.startswith("median_ms") and not k.endswith("_all")]
    write(out, argv, args, results, ["detector", "set", "images", "faces", "recall", "false/img",
                                     *time_cols])


def other_faces(files: Path) -> dict[Path, list]:
    """The real faces besides the labelled one in GENKI-SZSL photos (benchmarks/labels/
    genki_szsl_other_faces.csv), by photo path under `files`."""
    from mien.types import Box

    out: dict[Path, list] = {}
    with open(ROOT / "benchmarks/labels/genki_szsl_other_faces.csv") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        for r in rows:
            out.setdefault(files / r["file"], []).append(
                Box(*(float(r[k]) for k in ("x1", "y1", "x2", "y2"))))
    return out


def collages(genki, count: int, seed: int):
    """The seeded group photos, built from `genki` into .mien-cache/ (rebuilt every run, so
    they always match the code) and read back."""
    from mien.detection.evaluate import read_imglab, write_collages

    folder = ROOT / ".mien-cache" / f"collages-seed{seed}"
    return read_imglab(write_collages(genki, folder, count=count, seed=seed))


def grid(sets, ignore, min_faces: list[int], fine_scales: list[float | None]) -> list[dict]:
    from mien.detection import create_detector
    from mien.detection.evaluate import evaluate_detector

    set_threads(1)
    results = []
    for fine in fine_scales:
        for min_face in min_faces:
            detector = create_detector("yunet", min_face=min_face, fine_scale=fine)
            for set_name, items in sets.items():
                score = evaluate_detector(detector, items, ignore=ignore)
                results.append({"min_face": min_face, "fine_scale": fine, "set": set_name,
                                 "images": score.images, "faces": score.faces,
                                 "found": score.found, "recall": round(score.recall, 4),
                                 "false_per_image": round(score.false_per_image, 4),
                                 "median_ms_1_thread": round(score.median_ms, 2)})
                print(f"  min_face {min_face} fine {fine} {set_name}: recall "
                      f"{score.recall:.3f}, {score.false_per_image:.3f} false/img, "
                      f"{score.median_ms:.0f} ms", file=sys.stderr)
    return results


def write(out: Path, argv, args, results: list[dict], header: list[str]) -> None:
    """The table on stdout, the JSON in `out`."""
    keys = {"false/img": "false_per_image"}
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in results:
        cells = []
        for column in header:
            value = r[keys.get(column, column)]
            cells.append(f"{value:.3f}" if column in ("recall", "false/img")
                         else f"{value:.1f}" if column.startswith("median_ms") else str(value))
        print(" | ".join(cells))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "detection_grid" if args.grid else "detection",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2)},
        "iou": 0.4,
        "genki_limit": args.limit,
        "collages": {"count": args.collages, "seed": args.seed},
        "command": "python benchmarks/detection.py " + " ".join(argv or sys.argv[1:]),
        "results": results,
    }, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
