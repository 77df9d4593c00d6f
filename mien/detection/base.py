"""The detector protocol, its registry and the box arithmetic every backend shares."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from mien.errors import MienError, MienWarning, MissingDependencyError
from mien.types import Box, Face

# Backends register themselves on import; listing them imports these light modules (each keeps
# OpenCV / torch imports inside its functions).
_BACKEND_MODULES = ("mien.detection.haar", "mien.detection.yunet", "mien.detection.mtcnn")
DEFAULT_DETECTOR = "yunet"  # ships inside mien: the most accurate detector, offline
FALLBACK_DETECTORS = (DEFAULT_DETECTOR, "haar")  # tried in order when the one asked for is absent
MIN_SCORE_THRESHOLD = 0.05  # a 640x640 noise picture gives YuNet thousands of boxes below it


@dataclass(frozen=True, slots=True)
class DetectorOptions:
    """What every detector understands. `score_threshold=None` means the backend's own default,
    because scores are not comparable across backends (Haar has no probability). Building one
    checks every value, so the CLI, the Python API and the HTTP API share one rule."""

    # pixels: YuNet finds faces down to about 6 px in its fine view (benchmarks/detection.py);
    # faces too small to judge still get a row, their attributes left empty (Pipeline)
    min_face: int = 6
    score_threshold: float | None = None
    nms_iou: float = 0.3
    # The most faces kept per image, best scores first: a crowd photo has a few hundred, while a
    # permissive threshold on noise gives thousands, each cropped, classified and drawn.
    max_faces: int = 200

    def __post_init__(self):
        if self.min_face < 1:
            raise MienError(f"min_face={self.min_face}: use a face size of at least 1 pixel")
        t = self.score_threshold
        if t is not None and not MIN_SCORE_THRESHOLD <= t <= 1.0:
            raise MienError(f"score threshold {t}: use a value in [{MIN_SCORE_THRESHOLD}, 1] "
                            "(lower ones let noise pass for thousands of faces)")
        if not 0.0 < self.nms_iou <= 1.0:
            raise MienError(f"nms_iou={self.nms_iou}: use a value in (0, 1]")
        if self.max_faces < 1:
            raise MienError(f"max_faces={self.max_faces}: use 1 or more")


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
    install: str  # what makes it available, for the message when it is not


class DetectorFallbackWarning(MienWarning):
    """A detector asked for cannot run here, so another one runs (its name is in the results)."""


_REGISTRY: dict[str, DetectorEntry] = {}


def register_detector(name: str, summary: str, available: Callable[[], bool] = lambda: True,
                      install: str = ""):
    """Class decorator: `create_detector(name, **opts)` will build it."""

    def wrap(factory):
        _REGISTRY[name] = DetectorEntry(name, factory, summary, available, install)
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


def resolve_detector_name(name: str | None = None) -> str:
    """The detector that will run for `name` (None: the default, YuNet): `name` itself when it
    can run here, else the first of FALLBACK_DETECTORS that can, announced by a
    DetectorFallbackWarning (shown once per message on stderr). Unknown names are an error."""
    wanted = detector_entry(name or DEFAULT_DETECTOR)
    if wanted.available():
        return wanted.name
    ran = next((n for n in FALLBACK_DETECTORS if detector_entry(n).available()), None)
    if ran is None:
        raise MissingDependencyError(f"detector {wanted.name!r} is not available: "
                                     f"{wanted.install or 'reinstall mien'}")
    # stacklevel 1: one warning location whoever calls, so each message shows once per process.
    warnings.warn(f"detector {wanted.name!r} is not available ({wanted.install}); "
                  f"running {ran!r} instead", DetectorFallbackWarning, stacklevel=1)
    return ran


def default_detector_name() -> str:
    """The detector that runs when none is named: YuNet, bundled with mien."""
    return resolve_detector_name(None)


def create_detector(
    name: str | None = None,
    *,
    min_face: int = DEFAULT_OPTIONS.min_face,
    score_threshold: float | None = DEFAULT_OPTIONS.score_threshold,
    nms_iou: float = DEFAULT_OPTIONS.nms_iou,
    max_faces: int = DEFAULT_OPTIONS.max_faces,
    **backend_opts,
) -> Detector:
    """Build a registered detector (None: the default); when it cannot run here, another runs
    (see `resolve_detector_name`) and `backend_opts`, meant for the one asked for, are dropped.
    Its `name` says which one it is."""
    options = DetectorOptions(min_face, score_threshold, nms_iou, max_faces)
    ran = resolve_detector_name(name)
    if ran != (name or DEFAULT_DETECTOR):
        backend_opts = {}
    return detector_entry(ran).factory(options=options, **backend_opts)


# --- box arithmetic shared by backends -------------------------------------------------------


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, limit: int | None = None
        ) -> np.ndarray:
    """Greedy non-maximum suppression over (N, 4) x1, y1, x2, y2; indices kept, best first,
    at most `limit` of them."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(0, x2 - x1) * np.maximum(0, y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size and (limit is None or len(keep) < limit):
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
    """Filter by score and size, clip to the image, drop boxes with no pixel left inside it,
    suppress overlaps and keep the `max_faces` best, sorted by score."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if not len(boxes):
        return []
    if landmarks is not None:
        landmarks = np.asarray(landmarks, np.float64).reshape(len(boxes), -1, 2)
    h, w = image_shape[:2]
    # min_face judges the face as detected, even when part of it lies outside the picture.
    size = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    clipped = np.clip(boxes, 0.0, [w, h, w, h])
    # Less than a pixel inside the picture leaves nothing to crop, classify or draw.
    inside = (clipped[:, 2] - clipped[:, 0] >= 1) & (clipped[:, 3] - clipped[:, 1] >= 1)
    ok = (scores >= threshold) & (size >= options.min_face) & inside
    idx = np.flatnonzero(ok)
    idx = idx[nms(clipped[idx], scores[idx], options.nms_iou, options.max_faces)]
    faces = []
    for i in idx:
        # A landmark set with a NaN or inf point is dropped whole: crops fall back to the box.
        points = () if landmarks is None or not np.isfinite(landmarks[i]).all() else tuple(
            (float(x), float(y)) for x, y in landmarks[i])
        faces.append(Face(box=Box(*(float(v) for v in clipped[i])), score=float(scores[i]),
                          landmarks=points))
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
