"""A deterministic stand-in for `mien.models.loading.Classifier` and tiny generated datasets."""

import numpy as np
from PIL import Image

from mien.data.preprocess import Preprocess

LEVELS = {"dark": 40, "mid": 128, "bright": 215}


class BrightnessClassifier:
    """Scores an image by its mean gray level against one centre per label; a softmax over
    negative distances gives the probabilities. Records every batch size it is called with."""

    def __init__(self, labels=("dark", "mid", "bright"), name="brightness"):
        self.name = name
        self.labels = tuple(labels)
        self.preprocess = Preprocess(input_size=(16, 16), color="gray")
        self.centres = np.array([LEVELS[c] for c in self.labels], dtype=np.float64)
        self.batches = []

    def predict_proba(self, images):
        self.batches.append(len(images))
        x = self.preprocess(images)  # (N, 1, 16, 16) in [-1, 1]
        level = (x.mean(axis=(1, 2, 3)) * 0.5 + 0.5) * 255.0
        logits = -np.abs(level[:, None] - self.centres[None]) / 20.0
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class HalfClassifier:
    """p(left) is the share of brightness in the image's left half: mirroring swaps it."""

    name = "half"
    labels = ("left", "right")
    preprocess = Preprocess(input_size=(8, 8), color="gray")

    def predict_proba(self, images):
        x = self.preprocess(images)[:, 0] + 1.0
        left, right = x[:, :, :4].sum(axis=(1, 2)), x[:, :, 4:].sum(axis=(1, 2))
        p_left = left / (left + right)
        return np.stack([p_left, 1 - p_left], axis=1).astype(np.float32)


def write_gray(path, level, size=12):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), level, np.uint8)).save(path)


def make_folder(root, spec):
    """spec: {class folder: [gray level, ...]} -> ROOT/<class>/<i>.png"""
    for cls, levels in spec.items():
        for i, level in enumerate(levels):
            write_gray(root / cls / f"{i:02d}.png", level)
    return root


# 10 readable images: dark 3 (one looks mid), mid 3 (one looks bright), bright 4; one corrupt.
SPEC = {"dark": [30, 45, 120], "mid": [125, 135, 200], "bright": [210, 220, 230, 250]}


