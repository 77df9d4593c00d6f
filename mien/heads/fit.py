"""Fit a head on a network's embeddings into a run folder that `mien evaluate` loads.

Run folder: config.yaml (training options + `head:` section), split.json (when the data was
split), head.skops + head.json (the head and its record, which references the network by path
and SHA-256), metrics.json (validation accuracy, confusion, fit / predict / embedding times,
grid-search table), confusion.png.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mien.errors import MienError
from mien.heads.config import HeadConfig
from mien.training.config import ConfigError, TrainConfig


@dataclass(frozen=True, slots=True)
class HeadRunResult:
    run_dir: Path
    val_accuracy: float
    num_train: int  # embeddings the head was fitted on (after mirroring and subsampling)
    fit_seconds: float  # the whole fit, grid search included
    predict_seconds: float  # the head alone on the validation embeddings
    embed_seconds: float  # decoding + embedding (0 when every embedding came from the cache)
    best_params: Mapping[str, Any]


def new_run_dir(cfg: TrainConfig, name: str) -> Path:
    run_dir = Path(cfg.out) if cfg.out else Path("runs") / (
        f"{name}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}")
    if (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir}: already holds a run; pick another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def save_run_config(run_dir: Path, cfg: TrainConfig, hcfg: HeadConfig) -> None:
    import yaml

    d = cfg.to_dict()
    d.update({k: v for k, v in hcfg.to_dict().items() if v not in (None, {}, False)
              or k in ("grid", "anomaly")})
    (run_dir / "config.yaml").write_text(yaml.safe_dump(d, sort_keys=False))


def make_embedder(cfg: TrainConfig, hcfg: HeadConfig):
    """The backbone: dlib's face ResNet, or the network of `--from` at `hcfg.layer`."""
    if hcfg.backbone == "dlib-resnet":
        from mien.heads.dlib_backbone import DlibEmbedder

        return DlibEmbedder()
    if not cfg.transfer_from:
        raise ConfigError("--head needs --from RUN_OR_MODEL (the trained network whose "
                          "embeddings it classifies) or --backbone dlib-resnet")
    from mien.heads.embeddings import CnnEmbedder, resolve_cnn
    from mien.training.fit import resolve_device

    return CnnEmbedder(resolve_cnn(cfg.transfer_from), hcfg.layer,
                       device=resolve_device(cfg.device))


def _split_record_of(cfg: TrainConfig) -> dict | None:
    """The network's own train/val split when it was trained on a split of the same data, so
    the head is never scored on images the network learned from."""
    from mien.training.data import read_split_record

    src = Path(cfg.transfer_from or "")
    if cfg.val is not None or not src.is_dir() or not (src / "config.yaml").is_file():
        return None
    import yaml

    src_cfg = yaml.safe_load((src / "config.yaml").read_text()) or {}
    if str(src_cfg.get("data")) != str(cfg.data):
        return None
    return read_split_record(src)


def subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a random subset of size n with every class in its original proportion
    (at least one image per class)."""
    if n >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = max(1, int(round(n * len(idx) / len(y))))
        keep.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(keep))


def fit_head(head, x: np.ndarray, y: np.ndarray, num_classes: int, hcfg: HeadConfig, *,
             seed: int = 0) -> tuple[Any, list[dict]]:
    """Fit `head` in place, by grid search when `hcfg.grid`; returns it and the grid table."""
    from mien.heads.registry import estimator_params

    if not hcfg.grid:
        if head.info.jobs_param and "n_jobs" not in head.params:
            head.estimator.set_params(**estimator_params(head.name, {"n_jobs": hcfg.n_jobs}))
        return head.fit(x, y, num_classes), []
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    grid = dict(hcfg.grid_values if hcfg.grid_values is not None else head.info.grid)
    if not grid:
        raise ConfigError(f"head {head.name!r} has no default grid; give grid: in --config")
    mapped = estimator_params(head.name, {k: list(v) for k, v in grid.items()})
    if head.info.jobs_param:  # the search parallelises; nested pools would oversubscribe
        head.estimator.set_params(**estimator_params(head.name, {"n_jobs": 1}))
    counts = np.bincount(y)
    folds = min(hcfg.cv, int(counts[counts > 0].min()))
    if folds < 2:
        raise MienError("grid search: a class has fewer than 2 training images; add images "
                        "or leave --grid out")
    search = GridSearchCV(head.estimator, mapped, cv=StratifiedKFold(folds, shuffle=True,
                                                                     random_state=seed),
                          n_jobs=hcfg.n_jobs, refit=True)
    try:
        search.fit(np.asarray(x, np.float32), y)
    except (ValueError, TypeError) as exc:
        raise MienError(f"grid search for head {head.name!r}: {exc}") from exc
    names = {v: k for k, v in head.info.params.items()}
    head.estimator = search.best_estimator_
    head.params.update({names[k]: v for k, v in search.best_params_.items()})
    head.num_classes = num_classes
    r = search.cv_results_
    table = [{"params": {names[k]: v for k, v in p.items()},
              "mean_accuracy": float(r["mean_test_score"][i]),
              "std_accuracy": float(r["std_test_score"][i]),
              "mean_fit_seconds": float(r["mean_fit_time"][i]),
              "mean_predict_seconds": float(r["mean_score_time"][i]),
              "rank": int(r["rank_test_score"][i])} for i, p in enumerate(r["params"])]
    return head, sorted(table, key=lambda row: row["rank"])


def train_head(cfg: TrainConfig, hcfg: HeadConfig, *,
               echo: Callable[[str], None] = print) -> HeadRunResult:
    from mien.heads.embeddings import embed_dataset
    from mien.heads.registry import create_head
    from mien.training.data import load_splits

    head = create_head(hcfg.head, **dict(hcfg.head_params))  # bad names fail before any work
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    embedder = make_embedder(cfg, hcfg)
    train, val, split = load_splits(cfg, _split_record_of(cfg))
    if len(val) == 0:
        raise MienError(f"{cfg.data}: no validation images; give --val FOLDER or a fraction")
    run_dir = new_run_dir(cfg, hcfg.head)
    cfg = cfg.replace(out=str(run_dir))
    save_run_config(run_dir, cfg, hcfg)
    if split is not None:
        (run_dir / "split.json").write_text(json.dumps(split, indent=1))

    available = len(train)
    if hcfg.max_train is not None and hcfg.max_train < available:
        # before embedding, so a slow backbone (dlib) only embeds what the head will see
        train = train.subset(subsample(train.labels, hcfg.max_train, cfg.seed))
        echo(f"fitting on a stratified subset of {len(train)} of {available} training images")
    opts = dict(cache_dir=hcfg.cache_dir, strict=cfg.strict, workers=cfg.num_workers, echo=echo)
    tr = embed_dataset(embedder, train, mirror=cfg.mirror_double, **opts)
    va = embed_dataset(embedder, val, **opts)
    echo(f"embeddings: {len(tr.y)} train, {len(va.y)} val, dimension {tr.x.shape[1]} "
         f"({'cached' if tr.cached and va.cached else f'{tr.seconds + va.seconds:.1f}s'})")
    x, y = tr.x, tr.y

    k = len(train.classes)
    t0 = time.perf_counter()
    head, grid_table = fit_head(head, x, y, k, hcfg, seed=cfg.seed)
    fit_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    proba = head.predict_proba(va.x)
    predict_seconds = time.perf_counter() - t0
    pred = proba.argmax(axis=1)
    acc = float((pred == va.y).mean())
    echo(f"head {head.name} {head.params}: val accuracy {acc:.4f}, fit {fit_seconds:.1f}s, "
         f"predict {predict_seconds:.2f}s ({len(va.y)} images)")

    from mien.heads.saved import save_head
    from mien.runfiles import model_record

    ref = embedder.reference()
    if "path" in ref:
        ref["relpath"] = os.path.relpath(ref["path"], run_dir.resolve())
    record = model_record(arch=f"head:{head.name}", labels=train.classes,
                          preprocess=embedder.preprocess, in_channels=embedder.preprocess.channels,
                          backbone=ref, trained_on=str(cfg.data), run=run_dir.name,
                          val_accuracy=acc, framing=cfg.framing.to_dict())
    save_head(run_dir, head, record)

    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (va.y, pred), 1)
    from mien.training.plots import plot_confusion

    plot_confusion(cm, train.classes, run_dir / "confusion.png", title=f"validation, {head.name}")
    metrics = {
        "model": f"{head.name} on {ref.get('arch', ref['kind'])} {ref.get('layer', '')}".strip(),
        "head": head.name, "params": _jsonable(head.params), "backbone": ref,
        "classes": list(train.classes), "best_val_accuracy": acc, "final_val_accuracy": acc,
        "confusion": cm.tolist(), "stopped": "completed",
        "num_train": int(len(y)), "num_train_images_available": available,
        "num_val": int(len(va.y)),
        "mirror": cfg.mirror_double, "embedding_dim": int(tr.x.shape[1]),
        "train_seconds": round(fit_seconds, 3), "fit_seconds": round(fit_seconds, 3),
        "predict_seconds": round(predict_seconds, 4),
        "predict_images_per_second": round(len(va.y) / max(predict_seconds, 1e-9), 1),
        "embed_seconds": round(tr.seconds + va.seconds, 3),
        "embeddings_cached": bool(tr.cached and va.cached),
        "skipped": list(tr.skipped + va.skipped), "cpu_count": os.cpu_count(),
        "grid": [{**row, "params": _jsonable(row["params"])} for row in grid_table],
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return HeadRunResult(run_dir, acc, int(len(y)), fit_seconds, predict_seconds,
                         tr.seconds + va.seconds, dict(head.params))


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}
