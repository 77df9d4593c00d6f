"""Annotated pictures and videos: a box per face with a caption such as
"happy 0.93 · smile 0.89 · glasses 0.02"."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from mien.types import UNCERTAIN, Face, Prediction

BOX_COLOR = (40, 220, 90)  # RGB
TEXT_COLOR = (255, 255, 255)
SYSTEM_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/DejaVuSans.ttf",
)


def positive_label(labels) -> str | None:
    """The "yes" class of a yes/no attribute: the one of two labels without a no_/not_ prefix
    when the other has it (no_smile / smile, no_eyeglasses / eyeglasses)."""
    if len(labels) != 2:
        return None
    negative = [lb for lb in labels if lb.lower().startswith(("no_", "not_", "no-", "non_"))]
    return next(lb for lb in labels if lb not in negative) if len(negative) == 1 else None


def shown_value(name: str, pred: Prediction) -> tuple[str, float]:
    """A yes/no attribute shows its name and the "yes" probability, so "smile 0.02" reads as
    not smiling; any other shows its winning label and that label's probability. An answer
    below the minimum confidence says so: "smile uncertain 0.55", "expression uncertain 0.31"."""
    unsure = f"{name} {UNCERTAIN}" if pred.uncertain else None
    positive = name if name in pred.probabilities else positive_label(list(pred.probabilities))
    if len(pred.probabilities) == 2 and positive is not None:
        return unsure or name, pred.probabilities[positive]
    return unsure or pred.label, pred.score


def caption(face: Face, separator: str = " · ") -> str:
    parts = [f"{label} {value:.2f}" for label, value in
             (shown_value(n, p) for n, p in face.attributes.items())]
    if face.track_id is not None:
        parts.insert(0, f"#{face.track_id}")
    return separator.join(parts)


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


@lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    path = _font_path()
    return ImageFont.truetype(path, size) if path else None


def draw_faces(image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of the uint8 RGB image with each face's box, landmarks and caption drawn."""
    h, w = image.shape[:2]
    size = max(11, min(32, round(max(h, w) / 45)))
    font = _font(size)
    if font is None:
        return _draw_cv2(image, faces, size)
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(np.ascontiguousarray(image[:, :, :3]))
    draw = ImageDraw.Draw(canvas)
    thick = max(1, size // 8)
    for face in faces:
        b = face.box
        draw.rectangle([b.x1, b.y1, b.x2 - 1, b.y2 - 1], outline=BOX_COLOR, width=thick)
        for x, y in face.landmarks:
            draw.ellipse([x - thick, y - thick, x + thick, y + thick], fill=BOX_COLOR)
        text = caption(face)
        if not text:
            continue
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top
        x = min(max(0, b.x1), max(0, w - tw - 4))
        y = b.y1 - th - 6 if b.y1 - th - 6 >= 0 else min(h - th - 4, b.y2 + 2)
        draw.rectangle([x, y, x + tw + 4, y + th + 4], fill=BOX_COLOR)
        draw.text((x + 2 - left, y + 2 - top), text, font=font, fill=TEXT_COLOR)
    return np.asarray(canvas)


def _draw_cv2(image: np.ndarray, faces: Sequence[Face], size: int) -> np.ndarray:
    """Fallback without a TrueType font: OpenCV's Hershey font (ASCII only, so " | ")."""
    import cv2

    out = np.ascontiguousarray(image[:, :, :3]).copy()
    scale = size / 22
    for face in faces:
        b = face.box
        p1, p2 = (int(b.x1), int(b.y1)), (int(b.x2) - 1, int(b.y2) - 1)
        cv2.rectangle(out, p1, p2, BOX_COLOR, max(1, size // 8))
        for x, y in face.landmarks:
            cv2.circle(out, (int(x), int(y)), 2, BOX_COLOR, -1)
        text = caption(face, " | ")
        if text:
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            y = p1[1] - 4 if p1[1] - th - 8 >= 0 else p2[1] + th + 6
            cv2.rectangle(out, (p1[0], y - th - 4), (p1[0] + tw + 4, y + base), BOX_COLOR, -1)
            cv2.putText(out, text, (p1[0] + 2, y), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOR, 1,
                        cv2.LINE_AA)
    return out


class AnnotatedOutput:
    """Writes annotated copies under a folder: stills as JPEG, each video or camera stream as
    one MP4 whose frame rate follows the kept frames' timestamps."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._names: dict[str, Path] = {}
        self._videos: dict[str, object] = {}
        self._first: dict[str, tuple[float, np.ndarray]] = {}  # waiting for a second frame
        self.written: list[Path] = []

    def _target(self, source: str, suffix: str) -> Path:
        if source not in self._names:
            stem = "stdin" if source == "-" else Path(source.replace(":", "_")).stem
            path, n = self.folder / f"{stem}{suffix}", 1
            while path in self._names.values():
                path, n = self.folder / f"{stem}_{n}{suffix}", n + 1
            self._names[source] = path
        return self._names[source]

    def _open_video(self, source: str, fps: float, first: np.ndarray):
        import cv2

        path = self._target(source, ".mp4")
        h, w = first.shape[:2]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        writer.write(first)
        self._videos[source] = writer
        self.written.append(path)
        return writer

    def add(self, frame, faces: Sequence[Face]) -> None:
        if frame.image is None:
            return
        import cv2

        picture = cv2.cvtColor(draw_faces(frame.image, faces), cv2.COLOR_RGB2BGR)
        if not frame.stream:
            path = self._target(frame.source, ".jpg")
            cv2.imwrite(str(path), picture)
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
            writer.release()
        self._videos.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
