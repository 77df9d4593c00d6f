"""Detector evaluation: ground-truth readers (dlib imglab XML, GENKI-SZSL), group photos with
known boxes built from GENKI-SZSL portraits (`write_collages`), and box matching."""

from __future__ import annotations

import os
import statistics
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mien.errors import DatasetError
from mien.types import Box

GroundTruth = list[tuple[Path, list[Box]]]


def read_imglab(xml_path: str | os.PathLike) -> GroundTruth:
    """dlib imglab XML: <image file=...><box top= left= width= height=/>; paths are relative
    to the XML file. Boxes marked ignore='1' are dropped."""
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DatasetError(f"{xml_path}: not a readable imglab XML file ({exc})") from exc
    items = []
    for image in root.iter("image"):
        boxes = []
        for b in image.iter("box"):
            if b.get("ignore") == "1":
                continue
            x, y = float(b.get("left")), float(b.get("top"))
            boxes.append(Box(x, y, x + float(b.get("width")), y + float(b.get("height"))))
        items.append((xml_path.parent / image.get("file"), boxes))
    return items


def read_genki_szsl(folder: str | os.PathLike, limit: int | None = None) -> GroundTruth:
    """GENKI-SZSL: line N of GENKI-SZSL_labels.txt is `centre_x centre_y size` of the one face
    in files/fileNNNN.jpg (N from 1), a square box."""
    folder = Path(folder)
    labels = folder / "GENKI-SZSL_labels.txt"
    try:
        lines = [ln for ln in labels.read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise DatasetError(f"{labels}: cannot read the GENKI-SZSL labels ({exc})") from exc
    items = []
    for i, line in enumerate(lines[:limit] if limit else lines):
        try:
            cx, cy, size = (float(v) for v in line.split())
        except ValueError as exc:
            raise DatasetError(f"{labels}: line {i + 1} is not `x y size`: {line!r}") from exc
        half = size / 2
        items.append(
            (
                folder / "files" / f"file{i + 1:04d}.jpg",
                [Box(cx - half, cy - half, cx + half, cy + half)],
            )
        )
    return items


def write_imglab(xml_path: str | os.PathLike, items: GroundTruth) -> Path:
    """`items` as dlib imglab XML that `read_imglab` reads back (paths relative to the XML)."""
    xml_path = Path(xml_path)
    root = ET.Element("dataset")
    images = ET.SubElement(root, "images")
    for path, boxes in items:
        image = ET.SubElement(images, "image", file=os.path.relpath(path, xml_path.parent))
        for b in boxes:
            ET.SubElement(image, "box", top=f"{b.y1:g}", left=f"{b.x1:g}",
                          width=f"{b.width:g}", height=f"{b.height:g}")
    ET.indent(root)
    ET.ElementTree(root).write(xml_path, encoding="utf-8", xml_declaration=True)
    return xml_path


COLLAGE_SIDES = ((1600, 1200), (2400, 1600), (4000, 3000))  # phone and camera photo sizes


def write_collages(
    genki: GroundTruth,
    folder: str | os.PathLike,
    count: int = 24,
    seed: int = 0,
    faces_per_photo: int = 40,
    face_px: tuple[float, float] = (8.0, 60.0),
) -> Path:
    """Group photos whose boxes are known: `count` canvases (sizes cycling through
    COLLAGE_SIDES) on a smooth random background, each with `faces_per_photo` GENKI-SZSL faces
    (box side log-uniform in `face_px`) pasted with half a face-width of their photo around
    them and soft edges, never overlapping. Faces only shrink: their portraits must hold them at
    `face_px[1]` or more, with that surrounding inside the photo.
    The same `genki` items and seed give the same JPEGs. Returns the imglab XML of the set."""
    import cv2

    from mien.data.io import read_image

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources = [(p, t[0]) for p, t in genki if len(t) == 1 and _pasteable(p, t[0], face_px[1])]
    if not sources:
        raise DatasetError(f"no GENKI-SZSL face of {face_px[1]:g} px or more, with room around "
                           "it in its photo, to paste")
    photos: dict[Path, np.ndarray] = {}
    items = []
    for k in range(count):
        w, h = COLLAGE_SIDES[k % len(COLLAGE_SIDES)]
        grid = (h // 64 + 2, w // 64 + 2)
        low = rng.uniform(50, 210, (*grid, 1)) + rng.uniform(-25, 25, (*grid, 3))  # muted colours
        canvas = cv2.resize(low.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        canvas += rng.normal(0, 4, canvas.shape).astype(np.float32)
        taken: list[Box] = []
        truth: list[Box] = []
        while len(truth) < faces_per_photo:
            path, face = sources[rng.integers(len(sources))]
            side = float(np.exp(rng.uniform(*np.log(face_px))))
            if path not in photos:
                photos[path] = read_image(path)
            patch = _face_patch(photos[path], face, side)
            ph, pw = patch.shape[:2]
            x, y = int(rng.integers(0, w - pw)), int(rng.integers(0, h - ph))
            spot = Box(x - 4, y - 4, x + pw + 4, y + ph + 4)
            if any(spot.iou(b) > 0 for b in taken):
                continue
            taken.append(spot)
            alpha = _soft_edges(ph, pw)
            region = canvas[y:y + ph, x:x + pw]
            region[:] = alpha * patch + (1 - alpha) * region
            c = (x + pw / 2, y + ph / 2)
            truth.append(Box(c[0] - side / 2, c[1] - side / 2, c[0] + side / 2, c[1] + side / 2))
        out = folder / f"collage{k + 1:03d}.jpg"
        bgr = cv2.cvtColor(np.clip(canvas, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(out), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
        items.append((out, truth))
    return write_imglab(folder / "boxes.xml", items)


def _surrounding(face: Box) -> tuple[int, int, int]:
    """The square the pasted patch is cut from: the face with half its width around it,
    as (left, top, side)."""
    size = face.width
    return round(face.x1 - size / 2), round(face.y1 - size / 2), round(2 * size)


def _pasteable(path: Path, face: Box, min_side: float) -> bool:
    """The face is `min_side` px or more and its surrounding lies inside its photo."""
    from PIL import Image

    if face.width < min_side:
        return False
    x, y, span = _surrounding(face)
    with Image.open(path) as photo:
        w, h = photo.size
    return x >= 0 and y >= 0 and x + span <= w and y + span <= h


def _face_patch(image: np.ndarray, face: Box, side: float) -> np.ndarray:
    """The face's surrounding, scaled so the face box is `side` pixels."""
    import cv2

    x, y, span = _surrounding(face)
    out = max(3, round(span * side / face.width))
    crop = image[y:y + span, x:x + span]
    return cv2.resize(crop, (out, out), interpolation=cv2.INTER_AREA).astype(np.float32)


def _soft_edges(h: int, w: int) -> np.ndarray:
    """An alpha mask rising linearly over the outer sixth of the patch, (h, w, 1)."""
    ramp_y = np.minimum(np.arange(h) + 1, np.arange(h)[::-1] + 1) / max(1.0, h / 6)
    ramp_x = np.minimum(np.arange(w) + 1, np.arange(w)[::-1] + 1) / max(1.0, w / 6)
    return np.minimum(1.0, np.minimum.outer(ramp_y, ramp_x))[:, :, None].astype(np.float32)


def match_boxes(truth: Sequence[Box], found: Sequence[Box], iou: float = 0.4,
                ignore: Sequence[Box] = ()) -> tuple[int, int]:
    """Greedy one-to-one matching, best overlap first: (true faces found, unmatched detections).
    An unmatched detection on an `ignore` box (real faces the ground truth leaves out) is not
    counted."""
    pairs = sorted(
        ((t.iou(f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)),
        reverse=True,
    )
    used_t: set[int] = set()
    used_f: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < iou:
            break
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
    extra = [f for j, f in enumerate(found) if j not in used_f]
    return len(used_t), sum(not any(f.iou(g) >= iou for g in ignore) for f in extra)


@dataclass(frozen=True, slots=True)
class DetectionScore:
    images: int
    faces: int
    found: int
    false_detections: int
    times_ms: tuple[float, ...]  # detect() per image, in order

    @property
    def median_ms(self) -> float:
        return float(statistics.median(self.times_ms)) if self.times_ms else 0.0

    @property
    def recall(self) -> float:
        return self.found / self.faces if self.faces else 0.0

    @property
    def false_per_image(self) -> float:
        return self.false_detections / self.images if self.images else 0.0


def evaluate_detector(detector, items: GroundTruth, iou: float = 0.4,
                      ignore: Mapping[Path, Sequence[Box]] | None = None) -> DetectionScore:
    """Recall, false detections and median detect() time (decoding excluded) over `items`.
    `ignore`: per photo, real faces its ground truth leaves out; a detection on one of them is
    neither found nor false."""
    from mien.data.io import read_image

    found = false = faces = 0
    times = []
    for path, truth in items:
        image = read_image(path)
        start = time.perf_counter()
        detected = detector.detect(image)
        times.append(time.perf_counter() - start)
        hit, extra = match_boxes(truth, [f.box for f in detected], iou,
                                 (ignore or {}).get(Path(path), ()))
        found, false, faces = found + hit, false + extra, faces + len(truth)
    return DetectionScore(len(items), faces, found, false, tuple(t * 1000 for t in times))
