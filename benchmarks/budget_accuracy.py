"""Validation accuracy after a fixed training-time budget: our mien-net against the reports'
fer-f (issue #3). Each model trains in its own process with one torch thread, all at once, so
on a 2-core machine each gets one core for the same wall time.

    python benchmarks/budget_accuracy.py --minutes 12 --models mien-net-s,fer-f

Prints a table and writes results/budget_accuracy.json. `--blur-sigma` (default 0) blurs every
input as `mien train --blur-sigma` does; its results file was measured when our FER2013 train
split was a blurred copy (sigma 3), before the sharp original replaced it on 2026-12-03.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared = str(HERE.parents[1] / "shared" / "data")
    parser.add_argument("--data", default=os.environ.get("MIEN_DATA", shared))
    parser.add_argument("--models", default="mien-net-s,fer-f")
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--blur-sigma", type=float, default=0.0)
    parser.add_argument("--runs", default=str(HERE.parent / "runs" / "budget"))
    parser.add_argument("--out", default=str(HERE / "results" / "budget_accuracy.json"))
    args = parser.parse_args()

    fer = Path(args.data) / "fer2013"
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    procs = {}
    for name in models:
        run = Path(args.runs) / name
        cmd = [sys.executable, "-m", "mien.cli.main", "train", str(fer / "train"),
               "--val", str(fer / "val"), "--model", name, "--epochs", "200",
               "--schedule", "cosine", "--max-minutes", str(args.minutes), "--threads", "1",
               "--num-workers", "1", "--blur-sigma", str(args.blur_sigma), "--seed", "0",
               "--out", str(run), "--quiet"]
        if run.exists():
            sys.exit(f"{run} exists: remove it or pass --runs to another folder")
        procs[name] = (subprocess.Popen(cmd), run, cmd)
    rows = []
    for name, (proc, run, cmd) in procs.items():
        if proc.wait() != 0:
            sys.exit(f"training {name} failed (exit {proc.returncode}): {' '.join(cmd)}")
        m = json.loads((run / "metrics.json").read_text())
        rows.append({"model": name, "best_val_accuracy": m["best_val_accuracy"],
                     "best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"],
                     "train_seconds": m["train_seconds"],
                     "images_per_second": m["images_per_second"],
                     "command": " ".join(cmd[1:])})
    print(f"\nFER2013 val accuracy after {args.minutes:g} min of training, 1 thread each")
    print(f"{'model':<14}{'val acc':>9}{'epochs':>8}{'img/s':>8}")
    for r in rows:
        print(f"{r['model']:<14}{r['best_val_accuracy']:>9.4f}{r['epochs_run']:>8}"
              f"{r['images_per_second']:>8.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "minutes": args.minutes, "blur_sigma": args.blur_sigma,
        "load_avg_1min_at_end": os.getloadavg()[0], "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
