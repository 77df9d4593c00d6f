"""End-to-end analysis speed over a folder of photos: photos/s, faces/s and where the time goes
(decode / detect / crop / classify per model), the median of several passes.

    python benchmarks/analyze.py [--limit 1000] [--detector yunet] [--attributes LIST]
                                 [--threads 1,2] [--passes 5] [--out PATH]
    python benchmarks/analyze.py --baseline benchmarks/results/analyze.json   # + change vs a file
    python benchmarks/analyze.py --checkouts /work/main,.   # two checkouts, interleaved, one run

Photos: the first --limit GENKI-SZSL photos from ../shared/data (or $MIEN_DATA), or --folder.
Classifiers: every installed bundled model, or --attributes name=MODEL,... (run folders, .onnx).
Each pass builds the pipeline at its thread count (`Pipeline(threads=N)` and OpenCV's pool: 1
runs decoding, detection and classification in turn on one thread, 2 shares the photos with a
worker process (older checkouts overlapped the stages on threads); every network on one ONNX
Runtime thread; a checkout from before `threads=` always overlapped), warms it up on one photo
and times the rest: seconds per stage (summed over processes) and the CPU time of the process
and its workers. A shared machine's load moves single passes by tens of percent, so passes of
every setting are interleaved (pass 1 of each, then pass 2, ...) and the median is reported with
the range; the CPU model and the load average before and after go into the JSON. `--checkouts
A,B` runs each pass in a subprocess with that checkout first on PYTHONPATH: before/after under
the same load.
Prints a table and writes JSON (default benchmarks/results/analyze.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import set_threads  # noqa: E402  (benchmarks/ is sys.path[0])

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("decode", "detect", "crop", "classify")


class TimedClassifier:
    """A classifier whose predict_proba seconds add up in `seconds`: the per-model split of the
    pipeline's classify stage, measured from outside it."""

    def __init__(self, classifier):
        self._classifier = classifier
        self.seconds = 0.0

    def predict_proba(self, images):
        start = time.perf_counter()
        try:
            return self._classifier.predict_proba(images)
        finally:
            self.seconds += time.perf_counter() - start

    def __getattr__(self, name):
        return getattr(self._classifier, name)


def one_pass(files: list[Path], detector: str | None, specs: list[str] | None,
             batch_size: int, threads: int) -> dict:
    """One timed pass over `files` with a pipeline built at `threads`."""
    import mien
    from mien.inference.pipeline import Pipeline, PipelineStats

    set_threads(threads)
    try:
        pipeline = Pipeline(detector, specs, batch_size=batch_size, threads=threads)
    except TypeError:  # a checkout from before Pipeline(threads=): its stages always overlap
        pipeline = Pipeline(detector, specs, batch_size=batch_size)
    if not pipeline.attributes:
        sys.exit("no classifiers: no bundled model is installed; pass --attributes name=MODEL")
    # Seconds per classifier: the pipeline's own count where it keeps one (it includes the
    # worker processes' share), else timed from outside (a checkout from before it did).
    own_count = hasattr(PipelineStats(), "classify_model_s")
    timed = {name: TimedClassifier(c) for name, c in pipeline.attributes.items()}
    if not own_count:
        pipeline.attributes.update(timed)
    pipeline.analyze(files[0])  # warm up: sessions, first allocations at this thread count
    for t in timed.values():
        t.seconds = 0.0
    pipeline.stats = PipelineStats()
    start, cpu_start = time.perf_counter(), _cpu_s()
    rows = list(pipeline.run(files))
    wall, cpu = time.perf_counter() - start, _cpu_s() - cpu_start
    s = pipeline.stats
    # Seconds per photo; decoding runs in a background thread, overlapping the rest, so it only
    # costs wall time when it is the slower side.
    per_model = s.classify_model_s if own_count else {n: t.seconds for n, t in timed.items()}
    ms = {"decode": s.decode_s, "detect": s.detect_s, "crop": s.crop_s,
          "classify": s.classify_s, **{f"classify.{n}": v for n, v in per_model.items()}}
    return {
        "mien": str(Path(mien.__file__).parents[1]),
        "detector": pipeline.detector.name,
        "attributes": list(timed),
        "photos": s.frames, "faces": s.faces, "errors": s.errors,
        "no_face": sum(r.status == "no_face" for r in rows),
        "wall_s": wall,
        "photos_per_s": s.frames / wall,
        # CPU seconds of the process and its workers: what the work costs, whatever share of
        # the machine it got (wall-clock speed on a loaded machine says little).
        "cpu_ms_per_photo": 1000 * cpu / max(1, s.frames),
        "ms_per_photo": {k: 1000 * v / max(1, s.frames) for k, v in ms.items()},
    }


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished worker processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def summarize(passes: list[dict]) -> dict:
    """Medians over passes of one setting, with the range of photos/s."""
    speeds = [p["photos_per_s"] for p in passes]
    keys = passes[0]["ms_per_photo"]
    first = passes[0]
    return {
        "mien": first["mien"], "detector": first["detector"], "photos": first["photos"],
        "faces": first["faces"], "no_face": first["no_face"], "errors": first["errors"],
        "passes": len(passes),
        "photos_per_s": round(statistics.median(speeds), 2),
        "photos_per_s_min": round(min(speeds), 2), "photos_per_s_max": round(max(speeds), 2),
        "photos_per_s_each": [round(v, 2) for v in speeds],
        "cpu_ms_per_photo": round(statistics.median(p["cpu_ms_per_photo"] for p in passes), 3),
        "ms_per_photo": {k: round(statistics.median(p["ms_per_photo"][k] for p in passes), 3)
                         for k in keys},
    }


def main(argv: list[str] | None = None) -> None:
    from mien.inference.sources import expand_inputs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = Path(os.environ.get("MIEN_DATA", ROOT.parent / "shared" / "data"))
    parser.add_argument("--folder", type=Path, default=data / "detection/genki_szsl/files")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--detector", default=None)
    parser.add_argument("--attributes", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", default="1,2", help="thread counts to time, e.g. 1,2")
    parser.add_argument("--passes", type=int, default=5, help="timed passes per setting")
    parser.add_argument("--checkouts", default=None,
                        help="comma list of mien checkouts to compare, each pass in a subprocess")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="an earlier results file: adds the change in photos/s to the table")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/analyze.json")
    args = parser.parse_args(argv)

    specs = args.attributes.split(",") if args.attributes else None
    files = list(expand_inputs([args.folder]))[: args.limit]
    if args.worker is not None:  # one pass for a parent comparing checkouts
        print(json.dumps(one_pass(files, args.detector, specs, args.batch_size, args.worker)))
        return

    checkouts = [str(Path(c).resolve()) for c in args.checkouts.split(",")] \
        if args.checkouts else [None]
    settings = [(c, int(n)) for n in args.threads.split(",") for c in checkouts]
    load_before = os.getloadavg()
    passes: dict[tuple, list[dict]] = {s: [] for s in settings}
    for i in range(args.passes):
        # Alternate the order so neither side always runs right after the other.
        for setting in (settings if i % 2 == 0 else settings[::-1]):
            checkout, n = setting
            if checkout is None:
                result = one_pass(files, args.detector, specs, args.batch_size, n)
            else:
                result = run_in(checkout, argv, n)
            passes[setting].append(result)
            print(f"  pass {i + 1}: {checkout or 'here'}, {n} threads: "
                  f"{result['photos_per_s']:.1f} photos/s", file=sys.stderr)
    load_after = os.getloadavg()

    baseline = {}
    if args.baseline:
        for r in json.loads(args.baseline.read_text())["results"]:
            baseline[r["threads"]] = r["photos_per_s"]
    results = [{"checkout": c, "threads": n, **summarize(passes[(c, n)])} for c, n in settings]
    table(results, baseline)
    from mien.training.fit import cpu_name

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "analyze",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu": cpu_name(), "cpus": os.cpu_count(),
                    "load_avg_before": [round(v, 2) for v in load_before],
                    "load_avg_after": [round(v, 2) for v in load_after]},
        "command": "python benchmarks/analyze.py " + " ".join(argv or sys.argv[1:]),
        "folder": str(args.folder),
        "batch_size": args.batch_size,
        "threads": "Pipeline(threads=N): 1 = stages in turn on one thread, 2 = overlapped; "
                   "one ONNX Runtime thread per network",
        "baseline": str(args.baseline) if args.baseline else None,
        "results": results,
    }, indent=1) + "\n")
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}; "
          f"wrote {args.out}", file=sys.stderr)


def run_in(checkout: str, argv: list[str] | None, threads: int) -> dict:
    """One pass of this script's worker with `checkout`'s mien first on the path."""
    own = [a for a in (argv if argv is not None else sys.argv[1:])]
    keep, skip = [], False
    for a in own:  # the parent's own options do not go to the worker
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in ("--checkouts", "--baseline", "--out", "--passes", "--threads"):
            skip = "=" not in a
            continue
        keep.append(a)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [checkout, *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, __file__, *keep, "--worker", str(threads)],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{checkout}: the pass failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.splitlines()[-1])
    if Path(result["mien"]) != Path(checkout):
        sys.exit(f"{checkout}: the worker imported mien from {result['mien']}; "
                 "check PYTHONPATH and that the folder is a mien checkout")
    return result


def table(results: list[dict], baseline: dict[int, float]) -> None:
    stages = list(results[0]["ms_per_photo"])
    header = ["mien", "threads", "detector", "photos", "faces", "photos/s (median)", "range",
              "CPU ms/photo", *(f"{s} ms" for s in stages)]
    if baseline:
        header.append("vs baseline")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in results:
        cells = [r["checkout"] or r["mien"], r["threads"], r["detector"], r["photos"],
                 r["faces"], f"{r['photos_per_s']:.1f}",
                 f"{r['photos_per_s_min']:.0f}-{r['photos_per_s_max']:.0f}",
                 f"{r['cpu_ms_per_photo']:.2f}",
                 *(f"{r['ms_per_photo'][s]:.2f}" for s in stages)]
        if baseline:
            old = baseline.get(r["threads"])
            cells.append(f"{r['photos_per_s'] / old:.2f}x" if old else "-")
        print(" | ".join(str(c) for c in cells))


if __name__ == "__main__":
    main()
