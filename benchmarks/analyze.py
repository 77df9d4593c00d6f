"""End-to-end analysis speed over a folder of photos: photos/s, faces/s and where the time goes
(decoding runs in a background thread, overlapping the rest).

    python benchmarks/analyze.py [--limit 1000] [--detector yunet] [--attributes LIST]
                                 [--threads 1,2] [--out PATH]

Photos: the first --limit GENKI-SZSL photos from ../shared/data (or $MIEN_DATA), or --folder.
Classifiers: every installed bundled model, or --attributes name=MODEL,... (run folders, .onnx).
Prints a table and writes JSON (default benchmarks/results/analyze.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

from _common import set_threads  # noqa: E402  (benchmarks/ is sys.path[0])

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    from mien.inference.pipeline import Pipeline, PipelineStats
    from mien.inference.sources import expand_inputs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = Path(os.environ.get("MIEN_DATA", ROOT.parent / "shared" / "data"))
    parser.add_argument("--folder", type=Path, default=data / "detection/genki_szsl/files")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--detector", default=None)
    parser.add_argument("--attributes", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", default="1,2", help="thread counts to time, e.g. 1,2")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/analyze.json")
    args = parser.parse_args(argv)

    specs = args.attributes.split(",") if args.attributes else None
    pipeline = Pipeline(args.detector, specs, batch_size=args.batch_size)
    if not pipeline.attributes:
        sys.exit("no classifiers: no bundled model is installed; pass --attributes name=MODEL")
    files = list(expand_inputs([args.folder]))[: args.limit]
    detector_name = pipeline.detector.name
    attrs = ",".join(f"{k}({len(c.labels)})" for k, c in pipeline.attributes.items())
    header = ["threads", "detector", "attributes", "photos", "faces", "photos/s", "faces/s",
              "decode", "detect", "crop", "classify", "other"]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    results = []
    for n in (int(t) for t in args.threads.split(",")):
        set_threads(n)
        pipeline.analyze(files[0])  # warm up: sessions, first allocations at this thread count
        pipeline.stats = PipelineStats()
        start = time.perf_counter()
        rows = list(pipeline.run(files))
        wall = time.perf_counter() - start
        s = pipeline.stats
        result = {
            "threads": n,
            "photos": s.frames,
            "faces": s.faces,
            "no_face": sum(r.status == "no_face" for r in rows),
            "errors": s.errors,
            "wall_s": round(wall, 3),
            "photos_per_s": round(s.frames / wall, 2),
            "faces_per_s": round(s.faces / wall, 2),
            # Shares of wall-clock time; decoding runs in a background thread, overlapping the
            # rest, so it only costs wall time when it is the slower side.
            "share_decode": round(s.decode_s / wall, 3),
            "share_detect": round(s.detect_s / wall, 3),
            "share_crop": round(s.crop_s / wall, 3),
            "share_classify": round(s.classify_s / wall, 3),
            "share_other": round(max(0.0, 1 - (s.detect_s + s.crop_s + s.classify_s) / wall), 3),
        }
        results.append(result)
        print(" | ".join(str(c) for c in [
            n, detector_name, attrs, result["photos"], result["faces"], result["photos_per_s"],
            result["faces_per_s"], *(f"{result[k]:.0%}" for k in (
                "share_decode", "share_detect", "share_crop", "share_classify", "share_other"))]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "analyze",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_avg_1min": round(os.getloadavg()[0], 2)},
        "command": "python benchmarks/analyze.py " + " ".join(argv or sys.argv[1:]),
        "detector": detector_name,
        "attributes": {k: {"labels": list(c.labels), "input_size": list(c.preprocess.input_size),
                           "source": str(getattr(c, "path", "") or k)}
                       for k, c in pipeline.attributes.items()},
        "batch_size": args.batch_size,
        "results": results,
    }, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
