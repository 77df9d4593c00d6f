"""Augmentation: pure numpy/OpenCV functions on uint8 images, and thin seedable classes that only
draw random parameters and call them.

Images are uint8 gray (H, W) or RGB (H, W, 3). Every function returns a new array and leaves its
input untouched. A transform class draws from the `numpy.random.Generator` passed to `__call__`,
or from its own generator seeded by `seed`, so a seeded pipeline replays exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mien.data.io import convert_color
from mien.data.preprocess import equalize

# ---------------------------------------------------------------------------------------------
# Functions


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (height, width): area averaging when shrinking (no aliasing), else bilinear."""
    import cv2

    h, w = size
    if img.shape[:2] == (h, w):
        return img.copy()
    shrinking = img.shape[0] > h or img.shape[1] > w
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def to_gray(img: np.ndarray) -> np.ndarray:
    return convert_color(img, "gray").copy()


def to_rgb(img: np.ndarray) -> np.ndarray:
    return convert_color(img, "rgb").copy()


def scale01(img: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]."""
    return img.astype(np.float32) / 255.0


def normalize(img: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(x - mean) / std per channel (channels last); uint8 is first scaled to [0, 1]."""
    x = scale01(img) if img.dtype == np.uint8 else img.astype(np.float32)
    m = np.asarray(mean, np.float32)
    s = np.asarray(std, np.float32)
    if np.any(s <= 0):
        raise ValueError(f"std {tuple(std)}: every value must be positive")
    return (x - m) / s


def equalize_hist(img: np.ndarray) -> np.ndarray:
    """Global histogram equalization (colour images on luma)."""
    return equalize(img, "hist")


def clahe(img: np.ndarray, clip_limit: float = 2.0, tile: int = 8) -> np.ndarray:
    """Contrast-limited adaptive equalization on a tile x tile grid (colour images on luma)."""
    return equalize(img, "clahe", clip_limit, tile)


def hflip(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[:, ::-1])


def add_mirrored(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Append the mirror image of every image (N, H, W[, 3]) with the same label: 2N images."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    return np.concatenate([images, images[:, :, ::-1]]), np.concatenate([labels, labels])


def _warp(img: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    # Reflected borders: black corners would teach a model that rotated faces have dark corners.
    return cv2.warpAffine(
        img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )


def rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise about the centre, keeping the size."""
    import cv2

    h, w = img.shape[:2]
    return _warp(img, cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0))


def scale_shift(img: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    """Zoom by `scale` about the centre, then move by (dx, dy) pixels; the size is kept."""
    import cv2

    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, scale)
    m[0, 2] += dx
    m[1, 2] += dy
    return _warp(img, m)


def crop(img: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    h, w = img.shape[:2]
    if not (0 <= top and 0 <= left and top + height <= h and left + width <= w):
        raise ValueError(f"crop {height}x{width} at ({top}, {left}) exceeds image {h}x{w}")
    return img[top : top + height, left : left + width].copy()


def center_crop(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = size
    return crop(img, (h - ch) // 2, (w - cw) // 2, ch, cw)


def adjust_brightness(img: np.ndarray, delta: float) -> np.ndarray:
    """Add `delta` grey levels to every pixel (clipped to 0..255)."""
    return np.clip(img.astype(np.float32) + delta + 0.5, 0, 255).astype(np.uint8)


def adjust_contrast(img: np.ndarray, factor: float) -> np.ndarray:
    """Scale deviations from the image mean by `factor` (0: flat grey, 1: unchanged)."""
    x = img.astype(np.float32)
    mean = float(x.mean())
    return np.clip((x - mean) * factor + mean + 0.5, 0, 255).astype(np.uint8)


def adjust_gamma(img: np.ndarray, gamma: float) -> np.ndarray:
    """Map each grey level v to 255 * (v / 255) ** gamma: above 1 darkens the mid-tones (skin)
    while black and white stay, below 1 lightens them."""
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
    return lut[img]


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    if sigma <= 0:
        return img.copy()
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT_101)


def erase(img: np.ndarray, top: int, left: int, height: int, width: int,
          value: int) -> np.ndarray:
    """Fill a rectangle with one grey level: an occluder (hand, hair, microphone) in miniature."""
    out = img.copy()
    out[top : top + height, left : left + width] = value
    return out


def grayscale_keep_channels(img: np.ndarray) -> np.ndarray:
    """Gray content in the input's layout: RGB stays (H, W, 3) with three equal channels."""
    gray = convert_color(img, "gray")
    return convert_color(gray, "rgb") if img.ndim == 3 else gray.copy()


# ---------------------------------------------------------------------------------------------
# Seedable classes: each draws its parameters in `params(rng, img)` and applies a function above.


@dataclass
class Transform:
    """Base: applies with probability `p`; randomness from the caller's generator or `seed`."""

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(getattr(self, "seed", None))

    def params(self, rng: np.random.Generator, img: np.ndarray) -> dict:
        return {}

    def apply(self, img: np.ndarray, **params) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = self._rng if rng is None else rng
        p = getattr(self, "p", 1.0)
        # Draw the coin even when p == 1 so a pipeline's random stream does not depend on p.
        if rng.random() >= p:
            return img
        return self.apply(img, **self.params(rng, img))


@dataclass
class HorizontalFlip(Transform):
    p: float = 0.5
    seed: int | None = None

    def apply(self, img, **_):
        return hflip(img)


@dataclass
class RandomRotation(Transform):
    degrees: float = 10.0  # uniform in [-degrees, degrees]
    p: float = 1.0
    seed: int | None = None

    def params(self, rng, img):
        return {"angle": float(rng.uniform(-self.degrees, self.degrees))}

    def apply(self, img, angle):
        return rotate(img, angle)


@dataclass
class RandomScaleShift(Transform):
    scale: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.1  # fraction of width / height, uniform in [-shift, shift]
    p: float = 1.0
    seed: int | None = None

    def params(self, rng, img):
        h, w = img.shape[:2]
        return {
            "scale": float(rng.uniform(*self.scale)),
            "dx": float(rng.uniform(-self.shift, self.shift) * w),
            "dy": float(rng.uniform(-self.shift, self.shift) * h),
        }

    def apply(self, img, scale, dx, dy):
        return scale_shift(img, scale, dx, dy)


@dataclass
class RandomCrop(Transform):
    size: tuple[int, int] = (44, 44)  # (height, width)
    p: float = 1.0
    seed: int | None = None

    def params(self, rng, img):
        h, w = img.shape[:2]
        ch, cw = self.size
        if ch > h or cw > w:
            raise ValueError(f"crop size {self.size} is larger than the image {h}x{w}")
        return {"top": int(rng.integers(0, h - ch + 1)), "left": int(rng.integers(0, w - cw + 1))}

    def apply(self, img, top, left):
        return crop(img, top, left, *self.size)


@dataclass
class CenterCrop(Transform):
    size: tuple[int, int] = (44, 44)
    p: float = 1.0
    seed: int | None = None

    def apply(self, img, **_):
        return center_crop(img, self.size)


@dataclass
class Resize(Transform):
    size: tuple[int, int] = (48, 48)
    p: float = 1.0
    seed: int | None = None

    def apply(self, img, **_):
        return resize(img, self.size)


@dataclass
class Brightness(Transform):
    max_delta: float = 32.0  # grey levels, uniform in [-max_delta, max_delta]
    p: float = 1.0
    seed: int | None = None

    def params(self, rng, img):
        return {"delta": float(rng.uniform(-self.max_delta, self.max_delta))}

    def apply(self, img, delta):
        return adjust_brightness(img, delta)


@dataclass
class Contrast(Transform):
    factor: tuple[float, float] = (0.7, 1.3)
    p: float = 1.0
    seed: int | None = None

    def params(self, rng, img):
        return {"factor": float(rng.uniform(*self.factor))}

    def apply(self, img, factor):
        return adjust_contrast(img, factor)


@dataclass
class RandomGamma(Transform):
    max_log: float = 0.5  # gamma = exp(u), u uniform in [-max_log, max_log]
    p: float = 1.0
    seed: int | None = None

    def params(self, rng, img):
        return {"gamma": float(np.exp(rng.uniform(-self.max_log, self.max_log)))}

    def apply(self, img, gamma):
        return adjust_gamma(img, gamma)


@dataclass
class GaussianBlur(Transform):
    sigma: tuple[float, float] = (0.1, 1.5)
    p: float = 0.3
    seed: int | None = None

    def params(self, rng, img):
        return {"sigma": float(rng.uniform(*self.sigma))}

    def apply(self, img, sigma):
        return gaussian_blur(img, sigma)


@dataclass
class RandomErasing(Transform):
    """Random erasing (Zhong et al. 2020): a rectangle of 2-25 % of the image, aspect 0.3-3.3,
    filled with a random grey level, so no single region (the mouth, say) is needed to decide."""

    area: tuple[float, float] = (0.02, 0.25)
    p: float = 0.5
    seed: int | None = None

    def params(self, rng, img):
        h, w = img.shape[:2]
        target = rng.uniform(*self.area) * h * w
        aspect = float(np.exp(rng.uniform(np.log(0.3), np.log(3.3))))
        eh = int(min(h, max(1, round(np.sqrt(target * aspect)))))
        ew = int(min(w, max(1, round(np.sqrt(target / aspect)))))
        return {"top": int(rng.integers(0, h - eh + 1)), "left": int(rng.integers(0, w - ew + 1)),
                "height": eh, "width": ew, "value": int(rng.integers(0, 256))}

    def apply(self, img, top, left, height, width, value):
        return erase(img, top, left, height, width, value)


@dataclass
class RandomGrayscale(Transform):
    p: float = 0.2
    seed: int | None = None

    def apply(self, img, **_):
        return grayscale_keep_channels(img)


@dataclass
class Equalize(Transform):
    method: str = "clahe"  # "hist" or "clahe"
    clip_limit: float = 2.0
    tile: int = 8
    p: float = 1.0
    seed: int | None = None

    def apply(self, img, **_):
        return equalize(img, self.method, self.clip_limit, self.tile)


@dataclass
class Compose(Transform):
    """Apply transforms in order, all drawing from one generator (the caller's or `seed`)."""

    transforms: Sequence[Transform] = field(default_factory=list)
    seed: int | None = None

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = self._rng if rng is None else rng
        for t in self.transforms:
            img = t(img, rng)
        return img
