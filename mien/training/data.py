"""A run's images, decoded once into uint8 arrays at the model's input size."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mien.data import celeba
from mien.data.datasets import (
    ImageDataset,
    LabelSpec,
    apply_split_record,
    open_dataset,
    stratified_split,
)
from mien.data.preprocess import Preprocess
from mien.errors import DatasetError, ImageReadError
from mien.training.config import TrainConfig

DEFAULT_VAL_FRACTION = 0.1


@dataclass(frozen=True)
class TrainData:
    classes: tuple[str, ...]
    train_x: np.ndarray  # uint8 (N, H, W) or (N, H, W, 3), resized, not yet equalized
    train_y: np.ndarray  # int64 (N,)
    val_x: np.ndarray
    val_y: np.ndarray
    split_record: dict | None  # how `data` was split into train/val, when it was
    skipped: tuple[str, ...]  # "file: reason" for every unreadable image left out
    # Multi-task targets (CelebA's other attributes): float32 (N, K) of 0 / 1 per training image.
    aux_names: tuple[str, ...] = ()
    train_aux: np.ndarray | None = None


def load_splits(cfg: TrainConfig, split_record: dict | None = None
                ) -> tuple[ImageDataset, ImageDataset, dict | None]:
    """Train and validation sets as the config asks, with validation classes in train order."""
    spec = LabelSpec.parse(classes=cfg.classes, merge=cfg.merge)
    splits = open_dataset(cfg.data, labels=spec, attribute=cfg.attribute)
    base = splits.get("train") or splits.get("all") or next(iter(splits.values()))
    record = None
    if isinstance(cfg.val, str):
        vsplits = open_dataset(cfg.val, labels=spec, attribute=cfg.attribute)
        val = vsplits.get("val") or vsplits.get("all") or next(iter(vsplits.values()))
        train = base
    elif cfg.val is None and "val" in splits and "train" in splits:
        train, val = splits["train"], splits["val"]
    elif split_record is not None:
        train, val = apply_split_record(base, split_record)
        record = split_record
    else:
        train, val, record = stratified_split(base, cfg.val or DEFAULT_VAL_FRACTION, cfg.split_seed)
    return train, _align(val, train.classes, cfg.val or cfg.data), record


def _align(val: ImageDataset, classes: Sequence[str], where) -> ImageDataset:
    if val.classes == tuple(classes):
        return val
    extra = [c for c in val.classes if c not in classes]
    if extra:
        raise DatasetError(f"{where}: validation class(es) {', '.join(extra)} are not among the "
                           f"training classes ({', '.join(classes)}); use --classes or --merge")
    index = [list(classes).index(c) for c in val.classes]
    labels = [index[y] for y in val.labels]
    return ImageDataset(classes, val.sources, labels, arrays=val.arrays, name=val.name)


def decode(ds: ImageDataset, pre: Preprocess, *, strict: bool = False, workers: int = 0
           ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """uint8 images at `pre`'s size and colour, their labels and the files skipped. Equalization
    and blur are left to `pre` at batch time: they follow augmentation as they follow detection
    at inference."""
    images, keep, skipped = _decode_rows(ds, pre, strict=strict, workers=workers)
    return images, ds.labels[keep], skipped


def _decode_rows(ds: ImageDataset, pre: Preprocess, *, strict: bool, workers: int
                 ) -> tuple[np.ndarray, list[int], list[str]]:
    """decode's images, with the indices into `ds` of those that could be read."""
    resize = dataclasses.replace(pre, equalize="none", blur_sigma=0.0)

    def one(i: int):
        try:
            return resize.image(ds.load(i, pre.color)), None
        except ImageReadError as exc:
            if strict:
                raise
            return None, str(exc)

    n_workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=n_workers) as pool:  # decoders release the GIL
        results = list(pool.map(one, range(len(ds)), chunksize=64))
    keep = [i for i, (img, _) in enumerate(results) if img is not None]
    skipped = [err for _, err in results if err is not None]
    if not keep:
        raise DatasetError(f"{ds.name or 'dataset'}: none of its {len(ds)} images could be read")
    return np.stack([results[i][0] for i in keep]), keep, skipped


def prepare(cfg: TrainConfig, pre: Preprocess, split_record: dict | None = None) -> TrainData:
    train, val, record = load_splits(cfg, split_record)
    workers = cfg.num_workers
    aux_names, aux = (), None
    if cfg.aux_attributes:  # checked before the long decode
        aux_names, aux = celeba.attribute_targets(cfg.data, train.sources, cfg.attribute,
                                                  cfg.aux_attributes)
    tx, keep, tskip = _decode_rows(train, pre, strict=cfg.strict, workers=workers)
    vx, vy, vskip = decode(val, pre, strict=cfg.strict, workers=workers)
    if aux is not None:
        aux = aux[keep]
    return TrainData(train.classes, tx, train.labels[keep], vx, vy, record,
                     tuple(tskip + vskip), aux_names, aux)


def read_split_record(run_dir: str | os.PathLike) -> dict | None:
    p = Path(run_dir) / "split.json"
    return json.loads(p.read_text()) if p.is_file() else None


def run_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The training options of a run folder (an ensemble's: its first member's, whose data and
    split all members share; a head run's: without its head options)."""
    from mien.training.config import load_config

    p = Path(run_dir)
    raw = load_config(p / "config.yaml")
    if raw.get("members"):
        raw = raw["members"][0]
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig.from_dict({k: v for k, v in raw.items() if k in known},
                                 source=str(p / "config.yaml"))


def run_splits(run_dir: str | os.PathLike) -> tuple[ImageDataset, ImageDataset]:
    """The training and validation sets of a run folder, as its config.yaml and split.json
    made them."""
    train, val, _ = load_splits(run_config(run_dir), read_split_record(run_dir))
    return train, val


@dataclass(frozen=True)
class ScoredSplit:
    """The images `mien evaluate` scores and how to name them."""

    name: str  # train | val | test | all ...
    dataset: ImageDataset
    data: str  # what the images are, for the summary line, the JSON and `mien compare`
    warnings: tuple[str, ...] = ()


def split_to_score(model: str | os.PathLike, data: str | os.PathLike,
                   split: str | None = None, attribute: str | None = None) -> ScoredSplit:
    """`split` of `data` (default: test, else val, else all). When `model` is a run folder
    trained on `data`, the run's own `train` and `val` sets (split.json replayed) are among the
    splits, so the default is the images the run held out, never those it learned from."""
    from mien.evaluation.evaluate import select_split

    splits = open_dataset(data, attribute=attribute)
    run = Path(model)
    own = (run / "config.yaml").is_file()
    if own:
        cfg = run_config(run)
        own = (Path(cfg.data or "").resolve() == Path(data).resolve()
               and attribute in (None, cfg.attribute))
    if own:
        splits = dict(splits)
        splits["train"], splits["val"] = run_splits(run)
    name, dataset = select_split(splits, split, source=str(data))
    if not own:
        return ScoredSplit(name, dataset, str(data))
    described = f"{data}, split by {run}" if name in ("train", "val") else str(data)
    warnings = ()
    if name in ("train", "all"):
        warnings = (f"{run} was trained on these images: this is no held-out score; its "
                    "validation images are --split val",)
    return ScoredSplit(name, dataset, described, warnings)
