"""YuNet (libfacedetection, Apache-2.0) through OpenCV's FaceDetectorYN: box + 5 landmarks,
about 12 ms per photo on one CPU thread. Needs its 230 kB ONNX file (`mien models fetch yunet`)."""

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


@register_detector("yunet", "YuNet via OpenCV (box + 5 landmarks; needs its ONNX file)", _available)
class YuNetDetector:
    name = "yunet"
    default_threshold = 0.6

    def __init__(
        self,
        options: DetectorOptions = DEFAULT_OPTIONS,
        model_path: str | os.PathLike | None = None,
        models_dir: str | os.PathLike | None = None,
        max_side: int | None = 640,
        min_side: int | None = 144,
        top_k: int = 5000,
    ):
        import cv2

        self.options = options
        self.model_path = verified_model_file("yunet", model_path, models_dir)
        # Large photos are scaled down first: YuNet's cost grows with pixels while its smallest
        # anchor (about 10 px) still finds faces well above `min_face` after the downscale.
        self.max_side = max_side
        # Small pictures are scaled up: a face filling a 48 px crop is below YuNet's comfortable
        # range (found in 76% of FER2013 crops as they are, 95% at 3x).
        self.min_side = min_side
        t = options.score_threshold
        self.threshold = self.default_threshold if t is None else t
        self._detector = cv2.FaceDetectorYN.create(
            str(self.model_path), "", (320, 320), self.threshold, options.nms_iou, top_k
        )
        self._size = (320, 320)

    def detect(self, image: np.ndarray) -> list[Face]:
        import cv2

        image = check_image(image)
        h, w = image.shape[:2]
        scale = 1.0
        if self.max_side and max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
        elif self.min_side and max(h, w) < self.min_side:
            scale = self.min_side / max(h, w)
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if (sw, sh) != (w, h):
            shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            bgr = cv2.resize(bgr, (sw, sh), interpolation=shrink)
        if self._size != (sw, sh):
            self._detector.setInputSize((sw, sh))
            self._size = (sw, sh)
        _, raw = self._detector.detect(bgr)
        if raw is None or len(raw) == 0:
            return []
        raw = raw.astype(np.float64)
        # Map back to the caller's pixels using the exact per-axis ratios of the resize.
        sx, sy = w / sw, h / sh
        boxes = np.c_[
            raw[:, 0] * sx,
            raw[:, 1] * sy,
            (raw[:, 0] + raw[:, 2]) * sx,
            (raw[:, 1] + raw[:, 3]) * sy,
        ]
        points = raw[:, 4:14].reshape(-1, 5, 2) * np.array([sx, sy])
        return to_faces(boxes, raw[:, 14], points, self.options, self.threshold, image.shape)
