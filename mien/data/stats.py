"""Dataset summaries: image counts per split and class, and a PNG grid of sample images."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mien.data.datasets import ImageDataset
from mien.errors import ImageReadError


def split_counts(splits: Mapping[str, ImageDataset]) -> dict[str, dict[str, int]]:
    """{split: {class: images}}, every split listing every class (0 where it has none)."""
    classes = list(dict.fromkeys(c for ds in splits.values() for c in ds.classes))
    out = {}
    for split, ds in splits.items():
        counts = ds.counts()
        out[split] = {c: counts.get(c, 0) for c in classes}
    return out


def sample_grid(
    splits: Mapping[str, ImageDataset],
    path: str | os.PathLike,
    *,
    per_class: int = 8,
    cell: int = 64,
    seed: int = 0,
) -> Path:
    """Write a PNG with one row per class: its name, then `per_class` images drawn at random
    (seeded) from all splits. Unreadable images are skipped for the next one drawn."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    classes = list(dict.fromkeys(c for ds in splits.values() for c in ds.classes))
    pool: dict[str, list[tuple[ImageDataset, int]]] = {c: [] for c in classes}
    for ds in splits.values():
        for i, y in enumerate(ds.labels):
            pool[ds.classes[int(y)]].append((ds, i))
    label_w = max(8 * max(len(c) for c in classes) + 12, 60)
    canvas = Image.new(
        "RGB", (label_w + per_class * (cell + 2), len(classes) * (cell + 2)), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for row, c in enumerate(classes):
        y0 = row * (cell + 2)
        draw.text((4, y0 + cell // 2 - 10), f"{c}\n{len(pool[c])}", fill="black")
        col = 0
        for k in rng.permutation(len(pool[c])):
            if col == per_class:
                break
            ds, i = pool[c][k]
            try:
                img = ds.load(i, "rgb")
            except ImageReadError:
                continue
            tile = Image.fromarray(img).resize((cell, cell), Image.Resampling.BILINEAR)
            canvas.paste(tile, (label_w + col * (cell + 2), y0))
            col += 1
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
