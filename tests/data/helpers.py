"""Small synthetic image datasets for the data tests."""

from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def face(seed: int, size: int = 48) -> np.ndarray:
    """A smooth random blob image: distinct per seed, sharp enough to pass the blur check."""
    rng = np.random.default_rng(seed)
    low = rng.normal(size=(6, 6)).astype(np.float32)
    img = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    img = (img - img.min()) / (img.max() - img.min()) * 190 + 30
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def save(path: Path, img: np.ndarray, quality: int = 95) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        Image.fromarray(img).save(path)
    else:
        Image.fromarray(img).save(path, quality=quality)
    return path


def clean_tree(root: Path, per_class: int = 6) -> None:
    seed = 0
    for split in ("train", "val"):
        for cls in ("a", "b"):
            for i in range(per_class if split == "train" else 3):
                save(root / split / cls / f"{i}.png", face(seed))
                seed += 1
