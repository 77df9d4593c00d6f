"""Labelled image datasets: class-per-folder trees, split trees, and the FER2013 CSV.

Every loader returns `DatasetSplits`, a mapping of split name ("train", "val", "test", or "all"
for a single folder) to an `ImageDataset`. Images are decoded lazily from files, or held as one
uint8 array when they come from a CSV.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mien.data.io import ColorMode, convert_color, is_image_path, read_image
from mien.errors import DatasetError

SPLIT_NAMES = ("train", "val", "test")
# Folder names people use for the validation split, mapped to ours.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "publictest": "val",
    "test": "test",
    "privatetest": "test",
    "testing": "test",
}
FER_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class ImageDataset:
    """A labelled list of images. `sources[i]` names where image i came from (a file path, or
    `file.csv:row N`), `labels[i]` indexes `classes`."""

    def __init__(
        self,
        classes: Sequence[str],
        sources: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        *,
        arrays: np.ndarray | None = None,
        name: str = "",
    ):
        self.classes: tuple[str, ...] = tuple(classes)
        self.sources: list[str] = list(sources)
        self.labels: np.ndarray = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.arrays = arrays  # uint8 (N, H, W) or (N, H, W, 3) when images live in memory
        self.name = name
        if len(self.sources) != len(self.labels):
            raise ValueError("sources and labels differ in length")
        if arrays is not None and len(arrays) != len(self.labels):
            raise ValueError("arrays and labels differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"ImageDataset({self.name!r}, {len(self)} images, classes={list(self.classes)})"

    def load(self, index: int, mode: ColorMode | None = "rgb") -> np.ndarray:
        """Decode image `index` as uint8; raises ImageReadError naming the file when it cannot."""
        if self.arrays is not None:
            return convert_color(self.arrays[index], mode)
        return read_image(self.sources[index], mode)

    def counts(self) -> dict[str, int]:
        per = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, per, strict=True)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageDataset:
        idx = np.asarray(indices, dtype=np.int64)
        return ImageDataset(
            self.classes,
            [self.sources[i] for i in idx],
            self.labels[idx],
            arrays=None if self.arrays is None else self.arrays[idx],
            name=self.name,
        )

    def relabel(self, spec: LabelSpec) -> ImageDataset:
        """Apply a class subset, merges, a label map and an ignore list (see `LabelSpec`)."""
        new_classes, mapping = spec.resolve(self.classes)
        keep = [i for i, y in enumerate(self.labels) if mapping[int(y)] is not None]
        labels = [mapping[int(self.labels[i])] for i in keep]
        out = self.subset(keep)
        return ImageDataset(new_classes, out.sources, labels, arrays=out.arrays, name=self.name)


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """How one dataset's class names become the classes a model is trained or judged on.

    `label_map` renames (`anger=angry`) before anything else; `merge` folds classes into others
    (`disgust=angry`); `ignore` drops classes; `classes` keeps only these, in this order.
    """

    classes: tuple[str, ...] | None = None
    merge: Mapping[str, str] = field(default_factory=dict)
    label_map: Mapping[str, str] = field(default_factory=dict)
    ignore: frozenset[str] = frozenset()

    @classmethod
    def parse(
        cls,
        classes: str | Sequence[str] | None = None,
        merge: str | Mapping[str, str] | None = None,
        label_map: str | Mapping[str, str] | None = None,
        ignore: str | Iterable[str] | None = None,
    ) -> LabelSpec:
        return cls(
            classes=tuple(_split_list(classes)) or None if classes else None,
            merge=_parse_pairs(merge, "--merge"),
            label_map=_parse_pairs(label_map, "--label-map"),
            ignore=frozenset(_split_list(ignore)),
        )

    @property
    def is_identity(self) -> bool:
        return not (self.classes or self.merge or self.label_map or self.ignore)

    def resolve(self, names: Sequence[str]) -> tuple[tuple[str, ...], list[int | None]]:
        """New class tuple and, per old class index, its new index (None = dropped)."""
        final: list[str | None] = []
        for name in names:
            n = self.label_map.get(name, name)
            n = self.merge.get(n, n)
            final.append(None if n in self.ignore or name in self.ignore else n)
        present = [n for n in dict.fromkeys(final) if n is not None]
        # A label map harmonises several datasets, so a name one of them lacks is fine; a merge
        # or ignore names this dataset's classes, so a typo there must not pass silently.
        renamed = {self.label_map.get(n, n) for n in names}
        for src in list(self.merge) + sorted(self.ignore):
            if src not in names and src not in renamed:
                raise DatasetError(
                    f"class {src!r} is not in this dataset (classes: {', '.join(names)}); "
                    "check the spelling"
                )
        if self.classes:
            missing = [c for c in self.classes if c not in present]
            if missing:
                raise DatasetError(
                    f"class {', '.join(missing)} not found; this dataset has: {', '.join(present)}"
                )
            new = tuple(self.classes)
        else:
            new = tuple(present)
        index = {c: i for i, c in enumerate(new)}
        return new, [index.get(n) if n is not None else None for n in final]


def _split_list(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [s.strip() for s in items if s and s.strip()]


def _parse_pairs(value: str | Mapping[str, str] | None, option: str) -> dict[str, str]:
    if not value:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    out = {}
    for item in _split_list(value):
        if "=" not in item:
            raise DatasetError(f"{option} {item!r}: write pairs as from=to, e.g. disgust=angry")
        a, b = (s.strip() for s in item.split("=", 1))
        if not a or not b:
            raise DatasetError(f"{option} {item!r}: both sides of '=' need a class name")
        out[a] = b
    return out


class DatasetSplits(dict):
    """{split name: ImageDataset}, plus where the splits came from."""

    def __init__(
        self, splits: Mapping[str, ImageDataset], root: str, split_record: dict | None = None
    ):
        super().__init__(splits)
        self.root = root
        self.split_record = split_record  # how a single folder was split, for repeating it

    @property
    def classes(self) -> tuple[str, ...]:
        return next(iter(self.values())).classes


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_class_folder(
    root: str | os.PathLike, *, name: str = "", allow_empty_class: bool = False
) -> ImageDataset:
    """`ROOT/<class>/*` (images found recursively under each class folder)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder; give a folder laid out as ROOT/<class>/<images>")
    dirs = _class_dirs(root)
    if not dirs:
        raise DatasetError(
            f"{root}: no class folders inside; lay images out as {root}/<class>/<image files>"
        )
    classes, sources, labels = [], [], []
    for d in dirs:
        files = sorted(str(p) for p in d.rglob("*") if p.is_file() and is_image_path(p))
        if not files and not allow_empty_class:
            raise DatasetError(f"{d}: class folder has no image files; add images or remove it")
        classes.append(d.name)
        sources += files
        labels += [len(classes) - 1] * len(files)
    return ImageDataset(classes, sources, labels, name=name or root.name)


def _align_classes(splits: dict[str, ImageDataset]) -> dict[str, ImageDataset]:
    """Give every split the union of class names, sorted, so indices agree across splits."""
    names = sorted({c for ds in splits.values() for c in ds.classes})
    out = {}
    for split, ds in splits.items():
        index = [names.index(c) for c in ds.classes]
        labels = [index[y] for y in ds.labels]
        out[split] = ImageDataset(names, ds.sources, labels, arrays=ds.arrays, name=ds.name)
    return out


def stratified_split(
    ds: ImageDataset, val_fraction: float = 0.1, seed: int = 0
) -> tuple[ImageDataset, ImageDataset, dict]:
    """Split per class with a fixed seed. Returns train, val and a record (seed, fraction and the
    validation sources) that `apply_split_record` replays exactly."""
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"validation fraction {val_fraction}: choose a value between 0 and 1")
    rng = np.random.default_rng(seed)
    val_idx = []
    for c in range(len(ds.classes)):
        idx = np.flatnonzero(ds.labels == c)
        if len(idx) < 2:
            continue  # a one-image class stays in train
        rng.shuffle(idx)
        k = min(len(idx) - 1, max(1, int(round(len(idx) * val_fraction))))
        val_idx.extend(idx[:k].tolist())
    val_set = set(val_idx)
    train_idx = [i for i in range(len(ds)) if i not in val_set]
    val_idx = sorted(val_idx)
    record = {
        "seed": seed,
        "val_fraction": val_fraction,
        "val_sources": [ds.sources[i] for i in val_idx],
        "sources_sha256": hashlib.sha256("\n".join(ds.sources).encode()).hexdigest(),
    }
    return ds.subset(train_idx), ds.subset(val_idx), record


def apply_split_record(ds: ImageDataset, record: Mapping) -> tuple[ImageDataset, ImageDataset]:
    val = set(record["val_sources"])
    missing = val.difference(ds.sources)
    if missing:
        raise DatasetError(
            f"split record lists {len(missing)} file(s) no longer in the dataset, e.g. "
            f"{next(iter(missing))}; re-split with a new seed or restore the files"
        )
    val_idx = [i for i, s in enumerate(ds.sources) if s in val]
    train_idx = [i for i, s in enumerate(ds.sources) if s not in val]
    return ds.subset(train_idx), ds.subset(val_idx)


def read_fer_csv(path: str | os.PathLike, usages: Iterable[str] | None = None) -> DatasetSplits:
    """The original FER2013 CSV (`emotion,pixels,Usage`), streamed row by row into one uint8
    buffer per split (the file is never held in memory). A bad row raises DatasetError naming
    the row."""
    path = Path(path)
    wanted = set(usages) if usages else None
    buffers: dict[str, bytearray] = {}
    sides: dict[str, int] = {}
    ys: dict[str, list[int]] = {}
    srcs: dict[str, list[str]] = {}
    try:
        fh = open(path, newline="")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot open ({exc.strerror}); check the path") from exc
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}: not a CSV file ({exc}); give the FER2013 CSV") from exc
        if header is None:
            raise DatasetError(f"{path}: empty CSV; expected a header emotion,pixels,Usage")
        cols = [h.strip().lower() for h in header]
        if "emotion" not in cols or "pixels" not in cols:
            raise DatasetError(
                f"{path}: header {header!r} lacks emotion and pixels; expected emotion,pixels,Usage"
            )
        ie, ip = cols.index("emotion"), cols.index("pixels")
        iu = cols.index("usage") if "usage" in cols else None
        lineno = 1
        while True:
            try:
                row = next(reader, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise DatasetError(
                    f"{path}:row {reader.line_num}: unreadable CSV ({exc}); fix or delete the row"
                ) from exc
            if row is None:
                break
            lineno += 1
            if not row:
                continue
            where = f"{path}:row {lineno}"
            try:
                label = int(row[ie])
                usage = row[iu].strip() if iu is not None else "Training"
                pixels = np.array(row[ip].split(), dtype=np.int32)
            except (IndexError, ValueError) as exc:
                raise DatasetError(
                    f"{where}: malformed row ({exc}); fix or delete the row"
                ) from exc
            if not 0 <= label < len(FER_CLASSES):
                raise DatasetError(
                    f"{where}: emotion {label} is not in 0..6; fix or delete the row"
                )
            side = int(round(np.sqrt(pixels.size)))
            if (
                pixels.size == 0
                or side * side != pixels.size
                or pixels.min() < 0
                or pixels.max() > 255
            ):
                raise DatasetError(
                    f"{where}: pixels must be a square image of values 0..255 "
                    f"(got {pixels.size} values); fix or delete the row"
                )
            split = FER_USAGE.get(usage)
            if split is None:
                raise DatasetError(
                    f"{where}: Usage {usage!r} is not Training, PublicTest or PrivateTest"
                )
            if wanted and split not in wanted:
                continue
            if sides.setdefault(split, side) != side:
                raise DatasetError(
                    f"{where}: a {side}x{side} image among {sides[split]}x{sides[split]} ones in "
                    f"{usage}; resize it or delete the row"
                )
            buffers.setdefault(split, bytearray()).extend(pixels.astype(np.uint8).tobytes())
            ys.setdefault(split, []).append(label)
            srcs.setdefault(split, []).append(where)
    if not buffers:
        raise DatasetError(f"{path}: no image rows found")
    splits = {}
    for split in (s for s in SPLIT_NAMES if s in buffers):
        side = sides[split]
        arrays = np.frombuffer(buffers.pop(split), dtype=np.uint8).reshape(-1, side, side)
        splits[split] = ImageDataset(
            FER_CLASSES, srcs[split], ys[split], arrays=arrays, name=path.stem
        )
    return DatasetSplits(splits, str(path))


def split_folders(root: str | os.PathLike) -> dict[str, Path]:
    """The split folders of `ROOT/{train,val,test}/<class>/*` keyed by our split names, or
    {"all": ROOT} for `ROOT/<class>/*`."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder; give a folder laid out as ROOT/<class>/<images>")
    subdirs = _class_dirs(root)
    split_dirs = {
        SPLIT_ALIASES[d.name.lower()]: d for d in subdirs if d.name.lower() in SPLIT_ALIASES
    }
    if split_dirs and len(split_dirs) == len(subdirs):
        return {s: split_dirs[s] for s in SPLIT_NAMES if s in split_dirs}
    return {"all": root}


def open_dataset(
    path: str | os.PathLike,
    *,
    labels: LabelSpec | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    split_record: Mapping | None = None,
    attribute: str | None = None,
) -> DatasetSplits:
    """Open a dataset in any layout mien reads:

    - a FER2013 CSV file: splits from its Usage column;
    - a CelebA folder (`list_attr_celeba.txt` + `img_align_celeba/`) with `attribute`:
      one split "all" of no_<attribute> / <attribute>;
    - `ROOT/{train,val,test}/<class>/*`: those splits;
    - `ROOT/<class>/*`: one split "all" (use `split_train_val` for a seeded stratified split).
    """
    from mien.data import celeba

    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    if attribute is not None or celeba.is_celeba(p):
        if attribute is None:
            raise DatasetError(
                f"{p}: a CelebA folder; choose an attribute to classify, e.g. Eyeglasses or Smiling"
            )
        splits = DatasetSplits({"all": celeba.open_celeba(p, attribute)}, str(p))
    elif p.is_file():
        if p.suffix.lower() == ".csv":
            splits = read_fer_csv(p)
        else:
            raise DatasetError(
                f"{p}: not a dataset; give a folder of class folders or a FER2013 CSV"
            )
    else:
        folders = split_folders(p)
        if "all" in folders:
            splits = {"all": scan_class_folder(p)}
        else:
            splits = _align_classes(
                {
                    s: scan_class_folder(d, name=f"{p.name}/{d.name}", allow_empty_class=True)
                    for s, d in folders.items()
                }
            )
            for c in next(iter(splits.values())).classes:
                if sum(ds.counts()[c] for ds in splits.values()) == 0:
                    raise DatasetError(
                        f"{p}: class folder {c!r} has no image files in any split; "
                        "add images or remove it"
                    )
        splits = DatasetSplits(splits, str(p))
    if labels is not None and not labels.is_identity:
        splits = DatasetSplits(
            {k: v.relabel(labels) for k, v in splits.items()}, splits.root, splits.split_record
        )
    for name, ds in splits.items():
        if len(ds) == 0:
            raise DatasetError(f"{p}: split {name!r} has no images")
    return splits


def split_train_val(
    splits: DatasetSplits,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    record: Mapping | None = None,
) -> tuple[ImageDataset, ImageDataset, dict | None]:
    """Train and validation sets from whatever splits exist. A dataset without a validation
    split (a single folder, or a tree with only train) has its training images split
    (stratified, seeded); the record of that split is returned for the run folder."""
    if "train" in splits and "val" in splits:
        return splits["train"], splits["val"], None
    ds = splits["train"] if "train" in splits else splits.get("all") or next(iter(splits.values()))
    if record is not None:
        train, val = apply_split_record(ds, record)
        return train, val, dict(record)
    return stratified_split(ds, val_fraction, seed)


def save_split_record(record: Mapping, path: str | os.PathLike) -> None:
    Path(path).write_text(json.dumps(record, indent=1))
