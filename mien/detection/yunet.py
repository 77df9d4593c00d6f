"""YuNet (libfacedetection, Apache-2.0) through OpenCV's FaceDetectorYN: box + 5 landmarks,
about 12 ms per photo on one CPU thread. Its 230 kB ONNX file ships inside mien (see
mien/models/weights/yunet_s_640_640.NOTICE.md) and is checked against its SHA-256 on load."""

from __future__ import annotations

import os

import numpy as np

from mien.detection.base import (
    DEFAULT_OPTIONS,
    DetectorOptions,
    check_image,
    register_detector,
    to_faces,
)
from mien.detection.files import find_model_file, verified_model_file
from mien.types import Face


def _available() -> bool:
    return find_model_file("yunet") is not None


@register_detector("yunet", "YuNet via OpenCV (box + 5 landmarks; bundled)", _available,
                   install="reinstall mien: its bundled ONNX file is missing")
class YuNetDetector:
    name = "yunet"
    default_threshold = 0.6

    def __init__(
        self,
        options: DetectorOptions = DEFAULT_OPTIONS,
        model_path: str | os.PathLike | None = None,  # default: the bundled file
        models_dir: str | os.PathLike | None = None,  # or a copy from `mien models fetch`
        max_side: int | None = 640,
        min_side: int | None = 144,
        fine_scale: float | None = None,
        max_pixels: int = 24_000_000,
        top_k: int = 5000,
    ):
        import cv2

        self.options = options
        self.model_path = verified_model_file("yunet", model_path, models_dir)
        # The whole view: large photos are scaled down to `max_side`, which keeps big faces
        # within YuNet's anchors and the cost low; faces it shrinks below about 10 px are lost.
        self.max_side = max_side
        # Small pictures are scaled up: a face filling a 48 px crop is below YuNet's comfortable
        # range (found in 76% of FER2013 crops as they are, 95% at 3x).
        self.min_side = min_side
        # The fine view: a second pass at `fine_scale` times the photo's own size finds the faces
        # the whole view shrank below YuNet's smallest anchor (about 10 px); `max_pixels` bounds
        # its cost. None: the whole view only.
        self.fine_scale = fine_scale
        self.max_pixels = max_pixels
        t = options.score_threshold
        self.threshold = self.default_threshold if t is None else t
        self._detector = cv2.FaceDetectorYN.create(
            str(self.model_path), "", (320, 320), self.threshold, options.nms_iou, top_k
        )
        self._size = (320, 320)

    def scales(self, height: int, width: int) -> list[float]:
        """The sizes, relative to the photo's, at which YuNet sees it."""
        whole = 1.0
        if self.max_side and max(height, width) > self.max_side:
            whole = self.max_side / max(height, width)
        elif self.min_side and max(height, width) < self.min_side:
            whole = self.min_side / max(height, width)
        if not self.fine_scale:
            return [whole]
        fine = min(self.fine_scale, (self.max_pixels / (height * width)) ** 0.5)
        return [whole, fine] if fine > 1.25 * whole else [whole]

    def detect(self, image: np.ndarray) -> list[Face]:
        import cv2

        image = check_image(image)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        found = [self._detect_at(bgr, s) for s in self.scales(*image.shape[:2])]
        raw = np.concatenate(found)
        boxes = np.c_[raw[:, 0], raw[:, 1], raw[:, 0] + raw[:, 2], raw[:, 1] + raw[:, 3]]
        points = raw[:, 4:14].reshape(-1, 5, 2)
        return to_faces(boxes, raw[:, 14], points, self.options, self.threshold, image.shape)

    def _detect_at(self, bgr: np.ndarray, scale: float) -> np.ndarray:
        """YuNet's rows (x, y, w, h, 5 landmarks, score) for `bgr` seen at `scale`, in the
        photo's own pixels."""
        import cv2

        h, w = bgr.shape[:2]
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        if (sw, sh) != (w, h):
            shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            bgr = cv2.resize(bgr, (sw, sh), interpolation=shrink)
        if self._size != (sw, sh):
            self._detector.setInputSize((sw, sh))
            self._size = (sw, sh)
        _, raw = self._detector.detect(bgr)
        if raw is None or len(raw) == 0:
            return np.zeros((0, 15))
        # Back to the photo's pixels with the exact per-axis ratios of the resize.
        return raw.astype(np.float64) * np.r_[np.tile([w / sw, h / sh], 7), 1.0]
