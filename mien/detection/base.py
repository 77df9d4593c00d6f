"""The detector protocol, its registry and the box arithmetic every backend shares."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from mien.errors import MienError
from mien.types import Box, Face

# Backends register themselves on import; listing them imports these light modules (each keeps
# OpenCV / torch imports inside its functions).
_BACKEND_MODULES = ("mien.detection.haar", "mien.detection.yunet", "mien.detection.mtcnn")


@dataclass(frozen=True, slots=True)
class DetectorOptions:
    """What every detector understands. `score_threshold=None` means the backend's own default,
    because scores are not comparable across backends (Haar has no probability)."""

    min_face: int = 20  # pixels; smaller faces are too small to classify anyway
    score_threshold: float | None = None
    nms_iou: float = 0.3


DEFAULT_OPTIONS = DetectorOptions()


@runtime_checkable
class Detector(Protocol):
    name: str
    options: DetectorOptions

    def detect(self, image: np.ndarray) -> list[Face]:
        """uint8 RGB (H, W, 3) -> faces sorted by score, highest first."""
        ...


@dataclass(frozen=True, slots=True)
class DetectorEntry:
    name: str
    factory: Callable[..., Detector]
    summary: str
    available: Callable[[], bool]


_REGISTRY: dict[str, DetectorEntry] = {}


def register_detector(name: str, summary: str, available: Callable[[], bool] = lambda: True):
    """Class decorator: `create_detector(name, **opts)` will build it."""

    def wrap(factory):
        _REGISTRY[name] = DetectorEntry(name, factory, summary, available)
        return factory

    return wrap


def _load_backends() -> None:
    for module in _BACKEND_MODULES:
        importlib.import_module(module)


def list_detectors(available_only: bool = False) -> list[str]:
    """Registered names; `available_only` drops those whose files or packages are absent."""
    _load_backends()
    return sorted(n for n, e in _REGISTRY.items() if not available_only or e.available())


def detector_entry(name: str) -> DetectorEntry:
    _load_backends()
    if name not in _REGISTRY:
        raise MienError(f"unknown detector {name!r}: choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def default_detector_name() -> str:
    """The most accurate detector usable offline right now: YuNet once its file is present."""
    return "yunet" if detector_entry("yunet").available() else "haar"


def create_detector(
    name: str | None = None,
    *,
    min_face: int = 20,
    score_threshold: float | None = None,
    nms_iou: float = 0.3,
    **backend_opts,
) -> Detector:
    """Build a registered detector; `name=None` picks `default_detector_name()`."""
    entry = detector_entry(name or default_detector_name())
    if min_face < 1:
        raise MienError(f"min_face={min_face}: use a face size of at least 1 pixel")
    if not 0.0 < nms_iou <= 1.0:
        raise MienError(f"nms_iou={nms_iou}: use a value in (0, 1]")
    options = DetectorOptions(min_face=min_face, score_threshold=score_threshold, nms_iou=nms_iou)
    return entry.factory(options=options, **backend_opts)


# --- box arithmetic shared by backends -------------------------------------------------------


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression over (N, 4) x1, y1, x2, y2; indices kept, best first."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(0, x2 - x1) * np.maximum(0, y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        ix = np.maximum(0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        iy = np.maximum(0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = ix * iy
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def to_faces(
    boxes: np.ndarray,
    scores: np.ndarray,
    landmarks: np.ndarray | None,
    options: DetectorOptions,
    threshold: float,
    image_shape: Sequence[int],
) -> list[Face]:
    """Filter by score and size, suppress overlaps, clip to the image, sort by score."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if landmarks is not None:
        landmarks = np.asarray(landmarks, np.float64).reshape(len(boxes), -1, 2)
    size = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    ok = (scores >= threshold) & (size >= options.min_face)
    idx = np.flatnonzero(ok)
    idx = idx[nms(boxes[idx], scores[idx], options.nms_iou)]
    h, w = image_shape[:2]
    faces = []
    for i in idx:
        x1, y1, x2, y2 = boxes[i]
        box = Box(float(max(0.0, x1)), float(max(0.0, y1)), float(min(w, x2)), float(min(h, y2)))
        points = () if landmarks is None else tuple((float(x), float(y)) for x, y in landmarks[i])
        faces.append(Face(box=box, score=float(scores[i]), landmarks=points))
    return faces


def check_image(image: np.ndarray) -> np.ndarray:
    """Detectors take uint8 RGB; a gray image is expanded rather than refused."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise MienError(
            "detect() takes a uint8 numpy image; decode files with mien.data.io.read_image"
        )
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise MienError(f"detect() takes an (H, W, 3) RGB image, got shape {image.shape}")
    return np.ascontiguousarray(image[:, :, :3])
