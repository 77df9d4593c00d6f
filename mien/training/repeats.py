"""The same run with N seeds, to tell a real difference between settings from seed noise."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mien.training.config import TrainConfig, save_config
from mien.training.fit import RunResult, claim_run_dir, default_run_dir, preprocess_for, train

ENSEMBLE_DIR = "ensemble"  # RUN/ensemble: the seeds averaged, with `ensemble: true`


@dataclass(frozen=True, slots=True)
class RepeatStats:
    """Validation accuracy over seeds; std and variance are sample estimates (ddof=1)."""

    n: int
    mean: float
    std: float
    variance: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> RepeatStats:
        v = np.asarray(values, dtype=np.float64)
        var = float(v.var(ddof=1)) if len(v) > 1 else 0.0
        return cls(len(v), float(v.mean()), var ** 0.5, var, float(v.min()), float(v.max()))

    def row(self) -> str:
        return (f"n={self.n}  mean {self.mean:.4f}  std {self.std:.4f}  var {self.variance:.6f}  "
                f"min {self.min:.4f}  max {self.max:.4f}")


def train_repeats(cfg: TrainConfig, *, resume: bool = False, progress: bool = True,
                  echo: Callable[[str], None] = print) -> tuple[Path, RepeatStats]:
    """Train seeds cfg.seed .. cfg.seed + repeats - 1 into RUN/seed-K/; write RUN/repeats.json
    (and RUN/ensemble with `cfg.ensemble`). Images are decoded once for all seeds; with
    `resume`, finished seeds are kept as they are."""
    from mien.training.data import prepare, read_split_record
    from mien.training.distributed import refuse_under_torchrun

    refuse_under_torchrun(f"--repeats {cfg.repeats}")
    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
    claim_run_dir(run_dir, resume, echo)
    cfg = cfg.replace(out=str(run_dir))
    save_config(cfg, run_dir / "config.yaml")
    seeds = list(range(cfg.seed, cfg.seed + cfg.repeats))
    data = None
    results: list[RunResult | dict] = []
    for seed in seeds:
        sub = run_dir / f"seed-{seed}"
        metrics = sub / "metrics.json"
        done = metrics.is_file() and json.loads(metrics.read_text())["stopped"] != "interrupted"
        if resume and done:
            results.append(json.loads(metrics.read_text()))
            echo(f"seed {seed}: already trained")
            continue
        if data is None:
            record = read_split_record(run_dir / f"seed-{seeds[0]}")
            data = prepare(cfg, preprocess_for(cfg), record)
        echo(f"seed {seed} ({seeds.index(seed) + 1}/{len(seeds)})")
        res = train(cfg.replace(seed=seed, repeats=1, ensemble=False, ensemble_tta=None,
                                out=str(sub)),
                    resume=resume and (sub / "config.yaml").is_file(),  # this seed began
                    data=data, progress=progress, echo=echo)
        if res.stopped == "interrupted":
            echo(f"continue all seeds with `mien train --resume {run_dir}`")
            raise KeyboardInterrupt
        results.append(res)
    accs = [r.best_val_accuracy if isinstance(r, RunResult) else r["best_val_accuracy"]
            for r in results]
    stats = RepeatStats.of(accs)
    (run_dir / "repeats.json").write_text(json.dumps({
        "metric": "best_val_accuracy", "seeds": seeds, "values": accs, **asdict(stats),
        "runs": [f"seed-{s}" for s in seeds]}, indent=1))
    echo(f"validation accuracy over {stats.n} seeds: {stats.row()}")
    if cfg.ensemble:
        from mien.training.ensemble import combine_runs

        target = run_dir / ENSEMBLE_DIR
        shutil.rmtree(target, ignore_errors=True)  # derived from the seeds: rebuilt on resume
        ens = combine_runs([run_dir / f"seed-{s}" for s in seeds], target, tta=cfg.ensemble_tta,
                           echo=echo)
        echo(f"ensemble of {len(seeds)} seeds: val accuracy {ens.val_accuracy:.4f} -> {target}")
    return run_dir, stats
