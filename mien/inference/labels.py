"""Where face captions go on an annotated picture: pure geometry behind `draw_faces`.

A caption's parts ("happy 0.93", "smile 0.89", ...) are wrapped into lines about as wide as the
face's box, and each label is put near its face without leaving the picture, covering another
label, or (where it can) covering another face. The web page draws with a line-for-line port,
mien/api/static/labels.js; tests/inference/test_labels.py runs both on the same layouts.
Rounding is `floor(x + 0.5)` because JavaScript's Math.round rounds halves up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mien.types import Box

GAP = 2  # pixels between a label and its face's box
MIN_FONT = 6  # pixels: captions shrink to this before a part may stick out of a tiny picture
MAX_SPOTS = 400  # spots tried per label: enough for a group photo, bounded for a crowd
SEPARATOR = " · "


def font_size(width: float, height: float) -> int:
    """Caption text size for a width x height picture: 1/45 of its longer side, 10 to 32 px."""
    return max(10, min(32, math.floor(max(width, height) / 45 + 0.5)))


def line_height(size: int) -> int:
    return math.floor(size * 1.25 + 0.5)


def padding(size: int) -> int:
    """Space between a label's edge and its text."""
    return max(2, math.floor(size / 5 + 0.5))


def wrap(parts: Sequence[str], measure: Callable[[str], float], max_width: float,
         separator: str = SEPARATOR) -> list[str]:
    """`parts` joined by `separator` into lines no wider than `max_width`; a part wider than
    that gets a line of its own."""
    lines: list[str] = []
    for part in parts:
        if lines and measure(lines[-1] + separator + part) <= max_width:
            lines[-1] += separator + part
        else:
            lines.append(part)
    return lines


def label_lines(parts: Sequence[str], box: Box, measure: Callable[[str], float],
                image_width: float, size: int) -> list[str]:
    """A face's caption lines: as wide as its box, or as its widest part when that is wider,
    and never wider than the picture."""
    widest = max((measure(p) for p in parts), default=0.0)
    room = image_width - 2 * padding(size)
    return wrap(parts, measure, min(room, max(abs(box.x2 - box.x1), widest)))


def label_size(lines: Sequence[str], measure: Callable[[str], float],
               size: int) -> tuple[float, float]:
    """(width, height) of the label holding `lines` at text size `size`."""
    pad = padding(size)
    return (max((measure(t) for t in lines), default=0.0) + 2 * pad,
            len(lines) * line_height(size) + 2 * pad)


def _ordered(box: Box) -> Box:
    """The box with its corners in order (a detector may hand over an inverted one)."""
    return Box(min(box.x1, box.x2), min(box.y1, box.y2), max(box.x1, box.x2),
               max(box.y1, box.y2))


def _array(rects: Sequence[Box]) -> np.ndarray:
    return np.array([(r.x1, r.y1, r.x2, r.y2) for r in rects], np.float64).reshape(-1, 4)


def _overlaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) bool: which rectangles share area (touching edges do not)."""
    dx = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    dy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return (dx > 0) & (dy > 0)


def _candidates(box: Box, w: float, h: float, width: float, height: float, gap: float,
                placed: np.ndarray) -> np.ndarray:
    """(N, 4) spots for a w x h label of `box`, best first: touching the box above, then below
    (aligned with either edge, centred, or just beside a label already `placed` there, so
    labels pack in rows), right and left of it, inside its top edge; then, nearest first,
    spots beside, above and below every placed label and a grid over the whole picture.
    Every spot is pushed inside the picture; repeats are dropped; the first MAX_SPOTS stay."""
    max_x, max_y = max(0.0, width - w), max(0.0, height - h)
    xs = np.array([box.x1, box.x2 - w, (box.x1 + box.x2 - w) / 2])
    ys = np.array([box.y1, box.y2 - h, (box.y1 + box.y2 - h) / 2])
    packed = np.column_stack([placed[:, 2] + gap, placed[:, 0] - gap - w]).ravel()
    row_x = np.concatenate([xs, packed[(packed < box.x2) & (packed + w > box.x1)]])
    above, below = box.y1 - gap - h, box.y2 + gap

    def at(x, y) -> np.ndarray:
        return np.column_stack(np.broadcast_arrays(x, y)).reshape(-1, 2)

    near = np.concatenate([at(row_x, above), at(row_x, below), at(box.x2 + gap, ys),
                           at(box.x1 - gap - w, ys), at(box.x1, box.y1 + gap)])
    o = placed[:, None, :]  # per placed label, in this order: beside it, below it, above it
    beside = np.concatenate([
        np.stack(np.broadcast_arrays(o[..., 2] + gap, o[..., 1]), -1),
        np.stack(np.broadcast_arrays(o[..., 0] - gap - w, o[..., 1]), -1),
        np.stack(np.broadcast_arrays(xs, o[..., 3] + gap), -1),
        np.stack(np.broadcast_arrays(xs, o[..., 1] - gap - h), -1),
    ], axis=1).reshape(-1, 2)
    # One step past each edge: clamped, those spots line up with the picture's edges.
    step_x, step_y = max(w / 2, 1.0), h + gap
    k, i = np.meshgrid(
        np.arange(math.ceil(-above / step_y) - 1, math.floor((max_y - above) / step_y) + 2),
        np.arange(math.ceil(-box.x1 / step_x) - 1, math.floor((max_x - box.x1) / step_x) + 2),
        indexing="ij")
    grid = at(box.x1 + i.ravel() * step_x, above + k.ravel() * step_y)
    far = np.concatenate([beside, grid])
    dx = np.maximum(0.0, np.maximum(box.x1 - (far[:, 0] + w), far[:, 0] - box.x2))
    dy = np.maximum(0.0, np.maximum(box.y1 - (far[:, 1] + h), far[:, 1] - box.y2))
    spots = np.concatenate([near, far[np.argsort(dx * dx + dy * dy, kind="stable")]])
    spots = np.minimum(np.maximum(0.0, spots), [max_x, max_y])
    unique: dict[tuple[float, float], None] = {}
    for spot in map(tuple, spots.tolist()):
        unique[spot] = None
        if len(unique) == MAX_SPOTS:
            break
    first = np.array(list(unique))
    return np.column_stack([first, first + [w, h]])


def layout_labels(boxes: Sequence[Box], sizes: Sequence[tuple[float, float]], width: float,
                  height: float, gap: float = GAP) -> list[Box]:
    """A rectangle per face for its label of `sizes[i]` (width, height), inside the picture.

    Faces are served top to bottom. Each takes its first candidate spot (`_candidates`) that
    covers neither a placed label nor a face; failing that, the first covering the fewest
    labels, then the fewest faces."""
    boxes = [_ordered(b) for b in boxes]
    faces = _array(boxes)
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i].y1, boxes[i].x1, i))
    placed = np.empty((0, 4))
    out: dict[int, Box] = {}
    for i in order:
        w, h = sizes[i]
        spots = _candidates(boxes[i], w, h, width, height, gap, placed)
        cost = (_overlaps(spots, placed).sum(axis=1) * (len(boxes) + 1)
                + _overlaps(spots, faces).sum(axis=1))
        best = spots[int(np.argmin(cost))]
        out[i] = Box(*best.tolist())
        placed = np.vstack([placed, best])
    return [out[i] for i in range(len(boxes))]


def crowded(rects: Sequence[Box], boxes: Sequence[Box] = ()) -> bool:
    """Whether any two labels overlap, or a label covers one of `boxes`."""
    labels = _array(rects)
    return bool(np.triu(_overlaps(labels, labels), 1).any()
                or _overlaps(labels, _array(boxes)).any())


@dataclass(frozen=True, slots=True)
class Captions:
    """Where the captions of a picture go."""

    size: int  # text size, pixels
    lines: list[list[str]]  # per face
    rects: list[Box]  # per face: its label


def place_captions(boxes: Sequence[Box], parts: Sequence[Sequence[str]],
                   measure_for: Callable[[int], Callable[[str], float]], width: float,
                   height: float) -> Captions:
    """Text size, lines and label of each face's caption `parts[i]`. The text starts at
    `font_size`, shrunk until every part fits the picture's width (or down to MIN_FONT); when
    labels then overlap each other or faces, it tries about 5/6 and 2/3 of that size (smaller
    still stops helping a crowd) and keeps the first where none do, else the smallest."""
    boxes = [_ordered(b) for b in boxes]

    def widest(size: int) -> float:
        measure = measure_for(size)
        return max((measure(p) for face in parts for p in face), default=0.0)

    start = font_size(width, height)
    while start > MIN_FONT and widest(start) > width - 2 * padding(start):
        start -= 1
    least = max(MIN_FONT, math.floor(start * 2 / 3 + 0.5))
    for size in sorted({start, (start + least) // 2, least}, reverse=True):
        measure = measure_for(size)
        lines = [label_lines(p, b, measure, width, size) for p, b in zip(parts, boxes, strict=True)]
        rects = layout_labels(boxes, [label_size(t, measure, size) for t in lines], width, height)
        if not crowded(rects, boxes):
            break
    return Captions(size, lines, rects)


def leader(box: Box, label: Box, gap: float = GAP) -> tuple[tuple[float, float],
                                                            tuple[float, float]] | None:
    """The line from a label that was pushed away from its face back to the face's box:
    (label point, box point), or None when the label touches the box."""
    box = _ordered(box)
    cx, cy = (label.x1 + label.x2) / 2, (label.y1 + label.y2) / 2
    bx, by = min(max(cx, box.x1), box.x2), min(max(cy, box.y1), box.y2)
    lx, ly = min(max(bx, label.x1), label.x2), min(max(by, label.y1), label.y2)
    if math.hypot(bx - lx, by - ly) <= gap + 1:
        return None
    return (lx, ly), (bx, by)
