"""Detector evaluation: ground-truth readers (dlib imglab XML, GENKI-SZSL) and box matching."""

from __future__ import annotations

import os
import statistics
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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


def match_boxes(truth: Sequence[Box], found: Sequence[Box], iou: float = 0.4) -> tuple[int, int]:
    """Greedy one-to-one matching, best overlap first: (true faces found, unmatched detections)."""
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
    return len(used_t), len(found) - len(used_f)


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


def evaluate_detector(detector, items: GroundTruth, iou: float = 0.4) -> DetectionScore:
    """Recall, false detections and median detect() time (decoding excluded) over `items`."""
    from mien.data.io import read_image

    found = false = faces = 0
    times = []
    for path, truth in items:
        image = read_image(path)
        start = time.perf_counter()
        detected = detector.detect(image)
        times.append(time.perf_counter() - start)
        hit, extra = match_boxes(truth, [f.box for f in detected], iou)
        found, false, faces = found + hit, false + extra, faces + len(truth)
    return DetectionScore(len(items), faces, found, false, tuple(t * 1000 for t in times))
