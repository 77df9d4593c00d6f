"""The Ray engine against the local one on the same photos: photos/s and what Ray costs per
photo on this machine, where both engines have the same cores (a cluster adds machines, this
measures only the overhead).

    python benchmarks/ray_engine.py [--limit 2000] [--passes 1] [--cpus 2] [--out PATH]

Photos: the first --limit GENKI-SZSL photos from ../shared/data (or $MIEN_DATA), or --folder.
Models: YuNet and every installed bundled classifier, as `mien analyze` runs them.
local: `mien analyze DIR --out OUT --format parquet`'s own code (Pipeline.run into RowWriter).
ray: `mien analyze DIR --engine ray --out OUT`'s (plan_shards, run_shards) on a Ray started in
this process with --cpus CPUs; "ray start" is ray.init alone, "ray run" the rest (actors
started, models loaded in them, every shard written), so a long-lived cluster costs "ray run";
the JSON also has when the first row came back (the actors' start-up within "ray run").
Both write Parquet and their rows are compared. On a shared machine wall time depends on the
share of the cores each got (several Ray processes compete better for them than one), so CPU
time per photo is measured too: this process's, plus for Ray every process under it (raylet,
workers, actors) during the run, read every 0.2 s (`TreeCPU`; the reading counts against Ray).
Passes alternate local and ray; medians are reported. Prints a table and writes JSON (default
benchmarks/results/ray_engine.json).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import write_results  # noqa: E402  (benchmarks/ is sys.path[0])

ROOT = Path(__file__).resolve().parents[1]


def local_pass(files: list[str], out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds)."""
    from mien.inference.pipeline import Pipeline
    from mien.inference.writers import RowWriter

    start, cpu = time.perf_counter(), time.process_time()
    pipeline = Pipeline()
    with RowWriter(out, "parquet", pipeline.labels) as writer:
        for row in pipeline.run(files):
            writer.write(row)
    return time.perf_counter() - start, time.process_time() - cpu


def tree_cpu() -> dict[int, float]:
    """CPU seconds of this process (key 0) and of each process under it (Ray's raylet, workers
    and actors are): on a shared machine the work's cost, whatever share of the cores it got."""
    import psutil

    out = {0: time.process_time()}
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            out[child.pid] = t.user + t.system
        except psutil.Error:  # ended meanwhile
            pass
    return out


class TreeCPU:
    """CPU seconds of the process tree since `start()`, read every 0.2 s in a thread: Ray ends
    a stage's actors as soon as the stage is done, and a process's time is gone with it, so
    each one's last reading counts (at most 0.2 s of its work is missed)."""

    def __init__(self):
        import threading

        self._before: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TreeCPU:
        self._before = tree_cpu()
        self._last = dict(self._before)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._last.update(tree_cpu())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self._last.update(tree_cpu())
        return sum(v - self._before.get(pid, 0.0) for pid, v in self._last.items())


def ray_pass(files: list[str], out: Path, cpus: int) -> tuple[float, float, float, float]:
    """(seconds to start Ray, seconds for the rest, of which before the first row came back,
    CPU seconds of the rest in this process and every Ray process)."""
    import ray

    from mien.inference.pipeline import Pipeline
    from mien.inference.ray_engine import RayOptions, connect, plan_shards, run_shards

    options = RayOptions(num_cpus=cpus)
    start = time.perf_counter()
    connect(options)
    started, cpu = time.perf_counter(), TreeCPU().start()
    first: list[float] = []

    def progress(frames: int) -> None:
        if not first:
            first.append(time.perf_counter() - started)

    try:
        pipeline = Pipeline()
        plan = plan_shards(files, options=options)
        run_shards(plan, out, pipeline, list(pipeline.attributes), detector=None,
                   detector_options={}, landmarks="detector", options=options,
                   progress=progress)
        wall, run_cpu = time.perf_counter() - started, cpu.stop()
    finally:
        ray.shutdown()
    return started - start, wall, first[0], run_cpu


def main() -> None:
    import pandas as pd

    from mien.inference.sources import expand_inputs
    from mien.training.fit import cpu_name

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = Path(os.environ.get("MIEN_DATA", ROOT.parent / "shared" / "data"))
    parser.add_argument("--folder", type=Path, default=data / "detection/genki_szsl/files")
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ray_engine.json")
    args = parser.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"{args.folder}: no photos here; pass --folder or set MIEN_DATA")
    files = list(expand_inputs([args.folder]))[: args.limit]

    load_before = os.getloadavg()
    local_s, start_s, run_s, first_s, local_cpu, ray_cpu = [], [], [], [], [], []
    same = True
    for i in range(args.passes):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for engine in (("local", "ray") if i % 2 == 0 else ("ray", "local")):
                if engine == "local":
                    wall, cpu = local_pass(files, tmp / "faces.parquet")
                    local_s.append(wall)
                    local_cpu.append(cpu)
                else:
                    s, r, f, cpu = ray_pass(files, tmp / "faces", args.cpus)
                    start_s.append(s)
                    run_s.append(r)
                    first_s.append(f)
                    ray_cpu.append(cpu)
                print(f"  pass {i + 1}: {engine} done", file=sys.stderr)
            local = pd.read_parquet(tmp / "faces.parquet")
            same = same and local.equals(pd.read_parquet(tmp / "faces"))
            faces = int((local.status == "ok").sum())
    load_after = os.getloadavg()

    n = len(files)
    local, start, run, first, l_cpu, r_cpu = (statistics.median(v) for v in (
        local_s, start_s, run_s, first_s, local_cpu, ray_cpu))
    rows = [
        {"engine": "local", "seconds": local, "cpu_ms_per_photo": round(1000 * l_cpu / n, 2)},
        {"engine": "ray (start + run)", "seconds": start + run, "cpu_ms_per_photo": None},
        {"engine": "ray run (Ray already up)", "seconds": run,
         "cpu_ms_per_photo": round(1000 * r_cpu / n, 2)},
    ]
    for r in rows:
        r["photos_per_s"] = round(n / r["seconds"], 1)
        r["ms_per_photo"] = round(1000 * r["seconds"] / n, 2)
        r["overhead_ms_per_photo"] = round(1000 * (r["seconds"] - local) / n, 2)
        r["seconds"] = round(r["seconds"], 2)
    header = ["engine", "photos", "faces", "seconds", "photos/s", "ms/photo",
              "overhead ms/photo vs local", "CPU ms/photo"]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in rows:
        print(" | ".join(str(c) for c in (r["engine"], n, faces, r["seconds"], r["photos_per_s"],
                                          r["ms_per_photo"], r["overhead_ms_per_photo"],
                                          r["cpu_ms_per_photo"] or "-")))
    print(f"same rows: {same}; Ray start {start:.1f} s; first row {first:.1f} s into the run "
          f"(actors started, models loaded); load average (1, 5, 15 min) before "
          f"{load_before}, after {load_after}", file=sys.stderr)
    write_results(
        args.out, "ray_engine",
        f"python benchmarks/ray_engine.py --limit {args.limit} --passes {args.passes} "
        f"--cpus {args.cpus}",
        cpu=cpu_name(), load_avg_before=[round(v, 2) for v in load_before],
        load_avg_after=[round(v, 2) for v in load_after], folder=str(args.folder), photos=n,
        faces=faces, same_rows=same, ray_start_s=round(start, 2),
        ray_first_row_s=round(first, 2),
        passes={"local_s": [round(v, 2) for v in local_s],
                "ray_start_s": [round(v, 2) for v in start_s],
                "ray_run_s": [round(v, 2) for v in run_s],
                "ray_first_row_s": [round(v, 2) for v in first_s],
                "local_cpu_s": [round(v, 2) for v in local_cpu],
                "ray_run_cpu_s": [round(v, 2) for v in ray_cpu]},
        results=rows)


if __name__ == "__main__":
    main()
