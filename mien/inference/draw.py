"""Annotated pictures and videos: a box per face with a caption such as
"happy 0.93 · smile 0.89 · no_eyeglasses 0.98", placed by `mien.inference.labels`."""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from mien.inference.labels import font_size, leader, line_height, padding, place_captions
from mien.inference.video import VideoWriter
from mien.inference.writers import SourceNames
from mien.types import UNCERTAIN, Box, Face, Prediction

BOX_COLOR = (40, 220, 90)  # RGB
TEXT_COLOR = (255, 255, 255)
SYSTEM_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/DejaVuSans.ttf",
)


def shown_value(name: str, pred: Prediction) -> tuple[str, float]:
    """What a caption shows for one attribute: the winning label and its probability
    ("no_eyeglasses 0.98"), or, for an answer below the minimum confidence, the attribute
    called uncertain with its top probability ("smile uncertain 0.55")."""
    return (f"{name} {UNCERTAIN}" if pred.uncertain else pred.label), pred.score


def caption_parts(face: Face) -> list[str]:
    """The pieces of a face's caption, one per attribute, the first led by the face's track id
    when it has one ("#3 happy 0.93")."""
    parts = [f"{label} {value:.2f}" for label, value in
             (shown_value(n, p) for n, p in face.attributes.items())]
    if face.track_id is not None:
        parts[:1] = [" ".join([f"#{face.track_id}", *parts[:1]])]
    return parts


@lru_cache(maxsize=1)
def _font_path() -> str | None:
    """DejaVu Sans: matplotlib (a core dependency) ships it; else a system copy; else None."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        package = Path(next(iter(spec.submodule_search_locations)))
        path = package / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return str(path)
    return next((p for p in SYSTEM_FONTS if os.path.isfile(p)), None)


@lru_cache(maxsize=32)  # every size a tiny picture may shrink its captions through
def _font(size: int):
    from PIL import ImageFont

    path = _font_path()
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)


def _finite(box: Box) -> bool:
    return all(map(math.isfinite, (box.x1, box.y1, box.x2, box.y2)))


def _corners(box: Box, w: int, h: int, thick: int) -> tuple[float, float, float, float]:
    """The box's first and last pixel, in order even for a box thinner than a pixel or inverted
    (a detector other than mien's may give one): drawing never fails on it. Edges far outside
    the picture are pulled in to just beyond it, where they stay unseen: Pillow walks every row
    of a rectangle, so a box 1e12 pixels tall would hang it."""
    x1, x2 = (min(max(v, -thick - 1.0), w + thick) for v in sorted((box.x1, box.x2)))
    y1, y2 = (min(max(v, -thick - 1.0), h + thick) for v in sorted((box.y1, box.y2)))
    return x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)


def draw_faces(image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of the uint8 RGB image with each face's box, landmarks and caption drawn; no
    caption leaves the picture or covers another (`mien.inference.labels.place_captions`)."""
    from PIL import Image, ImageDraw

    h, w = image.shape[:2]
    canvas = Image.fromarray(np.ascontiguousarray(image[:, :, :3]))
    draw = ImageDraw.Draw(canvas)
    thick = max(1, font_size(w, h) // 8)
    faces = [f for f in faces if _finite(f.box)]  # a NaN box has no place to draw
    for face in faces:
        draw.rectangle(_corners(face.box, w, h, thick), outline=BOX_COLOR, width=thick)
        for x, y in face.landmarks:
            if -thick <= x <= w + thick and -thick <= y <= h + thick:  # also False for NaN
                draw.ellipse([x - thick, y - thick, x + thick, y + thick], fill=BOX_COLOR)
    captioned = [(face, parts) for face in faces if (parts := caption_parts(face))]
    if not captioned:
        return np.asarray(canvas)
    placed = place_captions([face.box for face, _ in captioned], [p for _, p in captioned],
                            lambda size: _font(size).getlength, w, h)
    font, pad, step = _font(placed.size), padding(placed.size), line_height(placed.size)
    for (face, _), text, rect in zip(captioned, placed.lines, placed.rects, strict=True):
        line = leader(face.box, rect)
        if line is not None:
            draw.line([*line[0], *line[1]], fill=BOX_COLOR, width=thick)
        draw.rectangle([rect.x1, rect.y1, rect.x2 - 1, rect.y2 - 1], fill=BOX_COLOR)
        for k, row in enumerate(text):
            draw.text((rect.x1 + pad, rect.y1 + pad + k * step), row, font=font, fill=TEXT_COLOR)
    return np.asarray(canvas)


class AnnotatedOutput:
    """Writes annotated copies under a folder: stills as JPEG, each video or camera stream as
    one MP4 (H.264, see `mien.inference.video`) whose frame rate follows the kept frames'
    timestamps."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._stems = SourceNames()
        self._videos: dict[str, VideoWriter] = {}
        self._first: dict[str, tuple[float, np.ndarray]] = {}  # waiting for a second frame
        self.written: list[Path] = []

    def _target(self, source: str, suffix: str) -> Path:
        return self.folder / f"{self._stems(source)}{suffix}"

    def _open_video(self, source: str, fps: float, first: np.ndarray) -> VideoWriter:
        path = self._target(source, ".mp4")
        h, w = first.shape[:2]
        writer = VideoWriter(path, fps, w, h)
        writer.write(first)
        self._videos[source] = writer
        self.written.append(path)
        return writer

    def add(self, frame, faces: Sequence[Face]) -> None:
        if frame.image is None:
            return
        import cv2

        picture = draw_faces(frame.image, faces)
        if not frame.stream:
            path = self._target(frame.source, ".jpg")
            cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            self.written.append(path)
            return
        writer = self._videos.get(frame.source)
        if writer is not None:
            writer.write(picture)
        elif frame.source in self._first:
            start, first = self._first.pop(frame.source)
            gap = (frame.timestamp or 0.0) - start
            self._open_video(frame.source, 1.0 / gap if gap > 0 else 25.0, first).write(picture)
        else:
            self._first[frame.source] = (frame.timestamp or 0.0, picture)

    def close(self) -> None:
        for source, (_, first) in self._first.items():  # one-frame streams
            self._open_video(source, 1.0, first)
        self._first.clear()
        for writer in self._videos.values():
            writer.close()
        self._videos.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
