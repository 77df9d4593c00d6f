"""Face detectors behind one protocol, one backend per file, entered by name.

    from mien.detection import create_detector
    faces = create_detector().detect(rgb)   # YuNet, bundled; list[mien.types.Face], best first

Landmarks, when a backend gives them, are five (x, y) points in this order: the eye on the
image's left (the subject's right eye), the eye on the image's right, the nose tip, the mouth
corner on the image's left, the mouth corner on the image's right — YuNet's own order.
"""

from mien.detection.base import (
    DEFAULT_DETECTOR,
    MIN_SCORE_THRESHOLD,
    Detector,
    DetectorFallbackWarning,
    DetectorOptions,
    create_detector,
    default_detector_name,
    list_detectors,
    nms,
    register_detector,
    resolve_detector_name,
)

__all__ = [
    "DEFAULT_DETECTOR",
    "MIN_SCORE_THRESHOLD",
    "Detector",
    "DetectorFallbackWarning",
    "DetectorOptions",
    "create_detector",
    "default_detector_name",
    "list_detectors",
    "nms",
    "register_detector",
    "resolve_detector_name",
]
