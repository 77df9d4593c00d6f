"""Training throughput of one process against data-parallel processes (`mien train --devices`,
torch DDP over gloo) on this machine's CPU cores, at the same effective batch (issue 19).

    python benchmarks/ddp_train.py --model fer-a --per-class 1000 --epochs 2

Each setting trains the same run on SMILEs (the first --per-class faces of each class, 10 % held
out) in its own `mien train` command, one
after another; the table gives the median epoch time (training steps only, as metrics.json's
images_per_second), the command's wall time (start-up, decoding, calibration and export
included) and the 1-minute load average when it started: on a machine others use, that is the
part of the figures that is not ours. Writes results/ddp_train.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import write_results  # noqa: E402


def settings(batch: int, cores: int) -> list[tuple[str, list[str]]]:
    """(name, options): one process on all cores, on one core, and one process per core."""
    return [
        (f"1 process, {cores} threads", ["--batch-size", str(batch), "--threads", str(cores)]),
        ("1 process, 1 thread", ["--batch-size", str(batch), "--threads", "1"]),
        (f"{cores} processes, 1 thread each",
         ["--batch-size", str(batch // cores), "--devices", str(cores)]),
    ]


def subset(smiles: Path, per_class: int, folder: Path) -> Path:
    """The first `per_class` faces of each SMILEs class, linked into `folder`."""
    if not per_class:
        return smiles
    for name in ("smile", "no_smile"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for f in sorted((smiles / name).glob("*.jpg"))[:per_class]:
            link = folder / name / f.name
            if not link.exists():
                link.symlink_to(f)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared = str(HERE.parents[1] / "shared" / "data")
    parser.add_argument("--data", default=os.environ.get("MIEN_DATA", shared))
    parser.add_argument("--model", default="fer-a")
    parser.add_argument("--per-class", type=int, default=1000, help="0: every SMILEs face")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="the effective batch")
    parser.add_argument("--runs", default=str(HERE.parent / "runs" / "ddp_train"))
    parser.add_argument("--out", default=str(HERE / "results" / "ddp_train.json"))
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0))
    data = subset(Path(args.data) / "smiles", args.per_class, Path(args.runs) / "data")
    rows = []
    for i, (name, options) in enumerate(settings(args.batch_size, cores)):
        run = Path(args.runs) / f"setting-{i}"
        if run.exists():
            sys.exit(f"{run} exists: remove it or pass --runs to another folder")
        cmd = [sys.executable, "-m", "mien", "train", str(data),
               "--model", args.model, "--epochs", str(args.epochs), "--device", "cpu",
               "--seed", "0", "--quiet", "--out", str(run), *options]
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        if subprocess.run(cmd).returncode != 0:
            sys.exit(f"{name} failed: {' '.join(cmd)}")
        wall = time.perf_counter() - t0
        m = json.loads((run / "metrics.json").read_text())
        rows.append({"setting": name, "epoch_seconds": statistics.median(
                         h["seconds"] for h in m["history"]),
                     "images_per_second": m["images_per_second"], "wall_seconds": round(wall, 1),
                     "load_average_at_start": round(load, 2),
                     "val_accuracy": m["final_val_accuracy"], **m["data_parallel"],
                     "command": " ".join(["mien", *cmd[3:]])})
    print(f"\n{args.model}, {m['num_train']} SMILEs faces, {args.epochs} epochs, effective "
          f"batch {args.batch_size}, {cores} cores")
    print(f"{'setting':<28}{'epoch s':>9}{'img/s':>8}{'wall s':>8}{'load':>6}{'val acc':>9}")
    for r in rows:
        print(f"{r['setting']:<28}{r['epoch_seconds']:>9.1f}{r['images_per_second']:>8.0f}"
              f"{r['wall_seconds']:>8.1f}{r['load_average_at_start']:>6.2f}"
              f"{r['val_accuracy']:>9.4f}")
    write_results(Path(args.out), "ddp_train", " ".join(sys.argv), model=args.model,
                  num_train=m["num_train"], num_val=m["num_val"], epochs=args.epochs,
                  effective_batch_size=args.batch_size, rows=rows)


if __name__ == "__main__":
    main()
