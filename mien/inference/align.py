"""Face crops for the classifiers: square, with a margin, rotated so the eyes are level when the
detector gave landmarks (boxes-only crops otherwise). One affine warp per face; each classifier's
`Preprocess` then resizes the crop to its own input."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mien.errors import MienError
from mien.types import Face

DEFAULT_MARGIN = 0.2  # of the box side on each crop; keeps the chin and brows of tight boxes
MAX_CROP = 256  # pixels; every bundled classifier reads 112 px or less


def eye_angle(face: Face) -> float:
    """Radians from the image-left eye to the image-right eye; 0 without (finite) landmarks."""
    if len(face.landmarks) < 2:
        return 0.0
    (x1, y1), (x2, y2) = face.landmarks[0], face.landmarks[1]
    angle = math.atan2(y2 - y1, x2 - x1)
    return angle if math.isfinite(angle) else 0.0


def crop_transform(
    face: Face, margin: float = DEFAULT_MARGIN, size: int | None = None, align: bool = True
) -> tuple[np.ndarray, int]:
    """The 2x3 affine that maps image pixels into the square crop, and the crop's side.

    The crop is centred on the box, its side is the box's longer side times (1 + margin), and
    when aligning it is turned by the eye angle so the eyes come out level."""
    b = face.box
    if not all(map(math.isfinite, (b.x1, b.y1, b.x2, b.y2))):
        raise MienError(f"face box ({b.x1}, {b.y1}, {b.x2}, {b.y2}) is not finite; "
                        "drop the face or give pixel coordinates")
    side = max(b.width, b.height) * (1.0 + margin)
    out = size or int(min(MAX_CROP, max(1, round(side))))
    scale = out / max(side, 1e-6)
    theta = eye_angle(face) if align else 0.0
    cos, sin = math.cos(theta) * scale, math.sin(theta) * scale
    cx, cy = (b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2
    # Rotating by -theta about the centre, then scaling and moving the centre to the crop's.
    matrix = np.array(
        [
            [cos, sin, out / 2 - (cos * cx + sin * cy)],
            [-sin, cos, out / 2 - (-sin * cx + cos * cy)],
        ]
    )
    return matrix, out


def crop_face(
    image: np.ndarray,
    face: Face,
    margin: float = DEFAULT_MARGIN,
    size: int | None = None,
    align: bool = True,
) -> np.ndarray:
    """One face as a square uint8 crop, same channels as `image`."""
    import cv2

    matrix, out = crop_transform(face, margin, size, align)
    scale = math.hypot(matrix[0, 0], matrix[0, 1])
    if scale < 0.5:
        # warpAffine has no area filter, so a big face shrunk in one step aliases: shrink the
        # region under the crop with INTER_AREA first and fold that into the affine.
        corners = np.array([[0, 0], [out, 0], [0, out], [out, out]], np.float64)
        inverse = cv2.invertAffineTransform(matrix)
        src = map_points(inverse, corners)
        h, w = image.shape[:2]
        x0, y0 = (max(0, int(v) - 2) for v in src.min(axis=0))
        x1, y1 = min(w, int(src[:, 0].max()) + 3), min(h, int(src[:, 1].max()) + 3)
        if x1 > x0 and y1 > y0:
            region = image[y0:y1, x0:x1]
            rw, rh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
            region = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
            kx, ky = rw / (x1 - x0), rh / (y1 - y0)
            linear = matrix[:, :2] / np.array([kx, ky])
            matrix = np.c_[linear, matrix[:, :2] @ np.array([x0, y0]) + matrix[:, 2]]
            image = region
    return cv2.warpAffine(
        image, matrix, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def crop_faces(
    image: np.ndarray,
    faces: Sequence[Face],
    margin: float = DEFAULT_MARGIN,
    size: int | None = None,
    align: bool = True,
) -> list[np.ndarray]:
    return [crop_face(image, f, margin, size, align) for f in faces]


def map_points(matrix: np.ndarray, points) -> np.ndarray:
    """Apply a 2x3 affine to (N, 2) points."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    return pts @ matrix[:, :2].T + matrix[:, 2]
