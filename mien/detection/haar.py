"""OpenCV's Viola-Jones frontal-face cascade: ships inside opencv-python-headless 4.x, so it
works right after install with no model file. Boxes only, no landmarks."""

from __future__ import annotations

import math

import numpy as np

from mien.detection.base import (
    DEFAULT_OPTIONS,
    DetectorOptions,
    check_image,
    register_detector,
    to_faces,
)
from mien.errors import MienError
from mien.types import Face

CASCADE = "haarcascade_frontalface_default.xml"
INSTALL = "run `pip install 'opencv-python-headless<5'`"  # 5.x wheels dropped the cascades


def _cascade_path() -> str:
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not folder:
        raise MienError(
            f"this OpenCV build ships no Haar cascades; {INSTALL} or use --detector yunet"
        )
    return folder + CASCADE


def _available() -> bool:
    try:
        import os

        return os.path.isfile(_cascade_path())
    except (ImportError, MienError):
        return False


RELOAD_PIXELS = 4_000_000


@register_detector("haar", "OpenCV Haar cascade (bundled with OpenCV; boxes only)", _available,
                   install=INSTALL)
class HaarDetector:
    name = "haar"
    fork_safe = True  # OpenCV's pool is stopped around a worker's fork (inference.workers)

    def __init__(
        self,
        options: DetectorOptions = DEFAULT_OPTIONS,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
    ):
        import cv2

        self.options = options
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self._cascade = cv2.CascadeClassifier(_cascade_path())
        if self._cascade.empty():
            raise MienError(f"{_cascade_path()}: OpenCV cannot load this cascade; reinstall OpenCV")

    def detect(self, image: np.ndarray) -> list[Face]:
        import cv2

        image = check_image(image)
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        size = self.options.min_face
        rects, _, weights = self._cascade.detectMultiScale3(
            gray,
            self.scale_factor,
            self.min_neighbors,
            minSize=(size, size),
            outputRejectLevels=True,
        )
        if gray.size >= RELOAD_PIXELS:
            # OpenCV keeps the integral images of every pyramid level of the largest picture
            # in the cascade (tens of bytes a pixel; for good in a server's detector): a fresh
            # cascade lets them go.
            self._cascade = cv2.CascadeClassifier(_cascade_path())
        if len(rects) == 0:
            return []
        rects = np.asarray(rects, np.float64).reshape(-1, 4)
        boxes = np.c_[rects[:, :2], rects[:, :2] + rects[:, 2:]]
        # The cascade gives its last stage's weight, not a probability; a logistic squashes it
        # into (0, 1) so it sorts and thresholds like the other backends' scores.
        scores = np.array([1.0 / (1.0 + math.exp(-float(w))) for w in np.ravel(weights)])
        threshold = 0.0 if self.options.score_threshold is None else self.options.score_threshold
        return to_faces(boxes, scores, None, self.options, threshold, image.shape)
