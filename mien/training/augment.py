"""Training-time augmentation: the config's toggles as a `mien.data.transforms` pipeline, run on
uint8 images already at the model's input size, before `Preprocess`."""

from __future__ import annotations

import numpy as np

from mien.data import transforms as T
from mien.training.config import TrainConfig


def build_augmentation(cfg: TrainConfig, input_size: tuple[int, int]) -> T.Compose | None:
    """The random pipeline the config asks for; None when augmentation is off."""
    if not cfg.augment:
        return None
    h, w = input_size
    steps: list[T.Transform] = []
    if cfg.flip:
        steps.append(T.HorizontalFlip(p=0.5))
    if cfg.crop:
        keep = (max(1, round(h * (1 - cfg.crop))), max(1, round(w * (1 - cfg.crop))))
        steps += [T.RandomCrop(size=keep), T.Resize(size=(h, w))]
    if cfg.scale_shift:
        steps.append(T.RandomScaleShift(scale=(1 - cfg.scale_shift, 1 + cfg.scale_shift),
                                        shift=cfg.scale_shift))
    if cfg.rotate:
        steps.append(T.RandomRotation(degrees=cfg.rotate))
    if cfg.blur:
        steps.append(T.GaussianBlur(p=cfg.blur))
    if cfg.brightness:
        steps.append(T.Brightness(max_delta=cfg.brightness * 255.0))
    if cfg.contrast:
        steps.append(T.Contrast(factor=(1 - cfg.contrast, 1 + cfg.contrast)))
    if cfg.gamma:
        steps.append(T.RandomGamma(max_log=float(np.log1p(cfg.gamma))))
    if cfg.grayscale:
        steps.append(T.RandomGrayscale(p=cfg.grayscale))
    if cfg.erase:
        steps.append(T.RandomErasing(p=cfg.erase))
    return T.Compose(steps) if steps else None


def augment_batch(images: np.ndarray, pipeline: T.Compose | None,
                  rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, H, W[, 3]) -> a randomly transformed batch of the same shape."""
    if pipeline is None or len(images) == 0:
        return images
    return np.stack([pipeline(img, rng) for img in images])


def add_mirrored(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return T.add_mirrored(images, labels)
