"""CelebA as a two-class dataset for one of its 40 binary attributes (Eyeglasses, Smiling, ...).

Layout: `ROOT/list_attr_celeba.txt` (line 1: image count, line 2: attribute names, then
`file v1 v2 ...` with 1 / -1) and the images in `ROOT/img_align_celeba/`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mien.data.datasets import ImageDataset
from mien.errors import DatasetError

ATTR_FILE = "list_attr_celeba.txt"
IMAGE_DIR = "img_align_celeba"


def is_celeba(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and (p / ATTR_FILE).is_file()


def read_attribute_table(path: str | os.PathLike) -> tuple[tuple[str, ...], list[str], np.ndarray]:
    """Attribute names, file names and an int8 (N, 40) table of 1 / -1, checked row by row."""
    path = Path(path)
    try:
        fh = open(path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot open ({exc.strerror}); check the path") from exc
    files: list[str] = []
    rows: list[list[int]] = []
    with fh:
        first = fh.readline().strip()
        names = tuple(fh.readline().split())
        if not first.isdigit() or not names:
            raise DatasetError(
                f"{path}: expected an image count on line 1 and attribute names on line 2"
            )
        for lineno, line in enumerate(fh, start=3):
            parts = line.split()
            if not parts:
                continue
            values = parts[1:]
            if len(values) != len(names) or any(v not in ("1", "-1") for v in values):
                raise DatasetError(
                    f"{path}:row {lineno}: expected a file name and {len(names)} values of 1 or -1 "
                    f"(got {len(values)} values); fix or delete the row"
                )
            files.append(parts[0])
            rows.append([int(v) for v in values])
    if len(files) != int(first):
        raise DatasetError(
            f"{path}: line 1 announces {int(first)} images but {len(files)} rows follow; "
            "the file is incomplete"
        )
    return names, files, np.asarray(rows, dtype=np.int8).reshape(len(files), len(names))


def open_celeba(root: str | os.PathLike, attribute: str = "Eyeglasses") -> ImageDataset:
    """Classes ("no_<attr>", "<attr>") in lowercase; label 1 where the table says 1."""
    root = Path(root)
    table = root / ATTR_FILE
    images = root / IMAGE_DIR
    if not table.is_file():
        raise DatasetError(f"{root}: no {ATTR_FILE}; give the CelebA folder that holds it")
    if not images.is_dir():
        raise DatasetError(f"{root}: no {IMAGE_DIR}/ folder beside {ATTR_FILE}")
    names, files, values = read_attribute_table(table)
    lookup = {n.lower(): i for i, n in enumerate(names)}
    col = lookup.get(attribute.lower())
    if col is None:
        raise DatasetError(f"{table}: no attribute {attribute!r}; choose one of {', '.join(names)}")
    present = set(os.listdir(images))
    missing = [f for f in files if f not in present]
    if missing:
        raise DatasetError(
            f"{images}: {len(missing)} image(s) listed in {ATTR_FILE} are missing, e.g. "
            f"{missing[0]}; restore them or delete their rows"
        )
    attr = names[col].lower()
    labels = (values[:, col] == 1).astype(np.int64)
    sources = [str(images / f) for f in files]
    return ImageDataset((f"no_{attr}", attr), sources, labels, name=f"celeba-{attr}")


def attribute_targets(root: str | os.PathLike, sources: Sequence[str], exclude: str,
                      names: str = "all") -> tuple[tuple[str, ...], np.ndarray]:
    """Attribute names and a float32 (len(sources), K) table of 0 / 1 for the CelebA images
    `sources` (paths into ROOT's image folder): every attribute but `exclude` ("all"), or those
    named in the comma list `names`. Auxiliary targets for multi-task training."""
    table = Path(root) / ATTR_FILE
    all_names, files, values = read_attribute_table(table)
    lookup = {n.lower(): i for i, n in enumerate(all_names)}
    if names.strip().lower() == "all":
        wanted = [n for n in all_names if n.lower() != exclude.lower()]
    else:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in wanted if n.lower() not in lookup]
        if unknown:
            raise DatasetError(f"{table}: no attribute {unknown[0]!r}; choose among "
                               f"{', '.join(all_names)} or 'all'")
        if any(n.lower() == exclude.lower() for n in wanted):
            raise DatasetError(f"aux_attributes: {exclude} is the attribute trained; leave it out")
    cols = [lookup[n.lower()] for n in wanted]
    row_of = {f: i for i, f in enumerate(files)}
    try:
        rows = [row_of[Path(s).name] for s in sources]
    except KeyError as exc:
        raise DatasetError(f"{table}: no row for image {exc.args[0]}; is it from this "
                           "CelebA folder?") from exc
    targets = (values[np.asarray(rows, dtype=np.int64)][:, cols] == 1).astype(np.float32)
    return tuple(all_names[c] for c in cols), targets
