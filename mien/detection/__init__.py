"""Face detectors behind one protocol, one backend per file, entered by name.

    from mien.detection import create_detector
    faces = create_detector("yunet").detect(rgb)   # list[mien.types.Face], best score first

Landmarks, when a backend gives them, are five (x, y) points in this order: the eye on the
image's left (the subject's right eye), the eye on the image's right, the nose tip, the mouth
corner on the image's left, the mouth corner on the image's right — YuNet's own order.
"""

from mien.detection.base import (
    Detector,
    DetectorOptions,
    create_detector,
    default_detector_name,
    list_detectors,
    nms,
    register_detector,
)

__all__ = [
    "Detector",
    "DetectorOptions",
    "create_detector",
    "default_detector_name",
    "list_detectors",
    "nms",
    "register_detector",
]
