"""The preprocessing a model was trained with, stored beside its weights and replayed at
inference: resize, colour, optional equalization, scaling and normalisation. Numpy + OpenCV only
(no torch), so ONNX inference and training share one code path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from mien.data.io import convert_color


@dataclass(frozen=True, slots=True)
class Preprocess:
    input_size: tuple[int, int] = (48, 48)  # (height, width)
    color: Literal["gray", "rgb"] = "gray"
    equalize: Literal["none", "hist", "clahe"] = "none"
    clahe_clip: float = 2.0
    clahe_tile: int = 8
    # Gaussian blur (sigma in pixels at input size) applied to every input: when the training
    # images are blurrier than the faces the model will read (a low-resolution or blurred
    # training set, sharp photos), blurring every input makes both look alike.
    blur_sigma: float = 0.0
    mean: tuple[float, ...] = (0.5,)  # applied after scaling to [0, 1]
    std: tuple[float, ...] = (0.5,)

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> Preprocess:
        d = dict(d)
        d["input_size"] = tuple(d.get("input_size", (48, 48)))
        d["mean"] = tuple(d.get("mean", (0.5,)))
        d["std"] = tuple(d.get("std", (0.5,)))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def image(self, img: np.ndarray) -> np.ndarray:
        """One uint8 image of any size/colour -> uint8 (H, W) or (H, W, 3) at input size."""
        import cv2

        img = convert_color(img, self.color)
        h, w = self.input_size
        if img.shape[:2] != (h, w):
            shrinking = img.shape[0] > h or img.shape[1] > w
            method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
            img = cv2.resize(img, (w, h), interpolation=method)
        if self.blur_sigma > 0:
            img = cv2.GaussianBlur(img, (0, 0), self.blur_sigma)
        if self.equalize != "none":
            img = equalize(img, self.equalize, self.clahe_clip, self.clahe_tile)
        return img

    @property
    def is_resize_only(self) -> bool:
        """True when `image` does nothing beyond resizing and colour conversion."""
        return self.equalize == "none" and self.blur_sigma <= 0

    def normalize(self, batch: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W[, 3]) at input size -> float32 (N, C, H, W), scaled and normalised."""
        x = batch.astype(np.float32) / 255.0
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        return np.ascontiguousarray((x - mean) / std)

    def __call__(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """uint8 images of any size -> the model's float32 (N, C, H, W) input."""
        return self.normalize(np.stack([self.image(im) for im in images]))


@dataclass(frozen=True, slots=True)
class Framing:
    """How a face is cut from a photo for a model: a square of the detector box's longer side
    x (1 + margin), turned so the eyes are level when `align` and the detector gave landmarks.
    It belongs to the model, like its `Preprocess`: a model trained on tight crops reads a
    loosely framed face worse."""

    margin: float = 0.2  # what mien used for every model before framing was stored
    align: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping | None) -> Framing:
        """The framing in a model record; None (models saved before framing) gives the old
        default."""
        if not d:
            return cls()
        return cls(margin=float(d.get("margin", 0.2)), align=bool(d.get("align", True)))


def equalize(img: np.ndarray, method: str, clip: float = 2.0, tile: int = 8) -> np.ndarray:
    """Histogram equalization or CLAHE of a uint8 image; colour images are equalized on luma."""
    import cv2

    def _one(gray: np.ndarray) -> np.ndarray:
        if method == "hist":
            return cv2.equalizeHist(gray)
        if method == "clahe":
            return cv2.createCLAHE(clipLimit=clip, tileGridSize=(tile, tile)).apply(gray)
        raise ValueError(f"equalize {method!r}: use 'hist', 'clahe' or 'none'")

    if img.ndim == 2:
        return _one(img)
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    ycc[:, :, 0] = _one(np.ascontiguousarray(ycc[:, :, 0]))
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
