"""Caption placement (mien.inference.labels) and its port for the web page (labels.js)."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib.resources import files

import numpy as np
import pytest

from mien.inference.draw import BOX_COLOR, draw_faces
from mien.inference.labels import (
    MIN_FONT,
    crowded,
    label_lines,
    label_size,
    layout_labels,
    leader,
    padding,
    place_captions,
    wrap,
)
from mien.types import Box, Face, Prediction

PARTS = ["happy 0.93", "smile 0.89", "no_eyeglasses 0.98"]


def measure_for(size: int):
    """A stand-in font: every character is 0.6 of the text size wide."""
    return lambda text: len(text) * size * 0.6


def group(rows: int = 2, per_row: int = 6, side: float = 70, spacing: float = 30,
          top: float = 80, row_gap: float = 90) -> list[Box]:
    """A group photo's faces: rows of equal boxes, each row shifted half a face."""
    return [Box(x, y, x + side, y + side)
            for r in range(rows)
            for c in range(per_row)
            for x in [30 + c * (side + spacing) + (r % 2) * side / 2]
            for y in [top + r * (side + row_gap)]]


def assert_readable(rects: list[Box], width: float, height: float) -> None:
    for r in rects:
        assert 0 <= r.x1 < r.x2 <= width and 0 <= r.y1 < r.y2 <= height, r
    for k, a in enumerate(rects):
        for b in rects[k + 1:]:
            assert not crowded([a, b]), (a, b)


def test_labels_of_a_group_stay_inside_the_picture_and_apart():
    faces, (width, height) = group(), (640, 480)
    measure, size = measure_for(14), 14
    lines = [label_lines(PARTS, b, measure, width, size) for b in faces]
    assert all(len(text) == 3 for text in lines)  # wrapped to about the face's width
    sizes = [label_size(text, measure, size) for text in lines]
    rects = layout_labels(faces, sizes, width, height)
    np.testing.assert_allclose([(r.width, r.height) for r in rects], sizes)
    assert_readable(rects, width, height)
    assert not crowded(rects, faces)  # room enough: no face covered either


def test_a_crowd_gets_smaller_text_before_labels_overlap():
    faces, (width, height) = group(rows=3, per_row=7, side=50, spacing=20, row_gap=60), (500, 420)
    placed = place_captions(faces, [PARTS] * len(faces), measure_for, width, height)
    assert placed.size < 11  # font_size(500, 420) is 11
    assert_readable(placed.rects, width, height)


def test_tiny_picture_shrinks_text_so_no_word_is_cut():
    face = Box(20, 10, 80, 70)
    placed = place_captions([face], [PARTS], measure_for, 100, 120)
    (text,), (rect,) = placed.lines, placed.rects
    assert text == PARTS  # one part per line
    widest = max(measure_for(placed.size)(p) for p in PARTS)
    assert MIN_FONT <= placed.size < 10 and widest <= 100 - 2 * padding(placed.size)
    assert_readable([rect], 100, 120)


def test_wrap_joins_parts_while_they_fit():
    measure = measure_for(10)  # 6 px a character
    assert wrap(["ab", "cd", "ef"], measure, 6 * 7) == ["ab · cd", "ef"]
    assert wrap(["a much longer part", "x"], measure, 30) == ["a much longer part", "x"]


def test_a_label_pushed_away_gets_a_leader_line():
    box = Box(100, 100, 160, 160)
    assert leader(box, Box(100, 80, 150, 98)) is None  # right above it
    (lx, ly), (bx, by) = leader(box, Box(300, 100, 350, 120))
    assert (lx, ly) == (300, 110) and (bx, by) == (160, 110)


def test_drawn_captions_of_a_group_do_not_cover_each_other():
    image = np.full((480, 640, 3), 60, np.uint8)
    pred = Prediction("happy", 0.93, {"happy": 0.93, "sad": 0.07})
    faces = [Face(b, 0.9, (), {"expression": pred}) for b in group()]
    out = draw_faces(image, faces)
    green = (out == BOX_COLOR).all(axis=2)
    inside = np.zeros_like(green)
    for f in faces:  # the boxes' insides stay untouched: no caption sits on a face
        b = f.box
        inside[int(b.y1) + 3:int(b.y2) - 3, int(b.x1) + 3:int(b.x2) - 3] = True
    assert green.sum() > 12 * 200 and not (out[inside] != 60).any()


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="Node.js not installed")
@pytest.mark.parametrize("layout", [
    dict(faces=group(), size=(640, 480)),
    dict(faces=group(rows=3, per_row=7, side=50, spacing=20, row_gap=60), size=(500, 420)),
    dict(faces=[Box(20, 10, 80, 70)], size=(100, 120)),
    dict(faces=[Box(5, 5, 300, 200), Box(310, 250, 250, 320)], size=(360, 330)),  # inverted box
])
def test_the_web_page_places_captions_as_the_library_does(layout, tmp_path):
    faces, (width, height) = layout["faces"], layout["size"]
    parts = [[f"{i + 1}", *PARTS[: 1 + i % 3]] for i in range(len(faces))]
    placed = place_captions(faces, parts, measure_for, width, height)
    script = tmp_path / "layout.js"
    script.write_text(f"""
const labels = require({json.dumps(str(files("mien.api") / "static" / "labels.js"))});
const boxes = {json.dumps([dict(x1=b.x1, y1=b.y1, x2=b.x2, y2=b.y2) for b in faces])};
const measureFor = (size) => (text) => [...text].length * size * 0.6;
const placed = labels.placeCaptions(boxes, {json.dumps(parts)}, measureFor, {width}, {height});
const leaders = placed.rects.map((r, i) => labels.leader(boxes[i], r));
console.log(JSON.stringify({{...placed, leaders}}));
""")
    page = json.loads(subprocess.run([NODE, str(script)], capture_output=True, text=True,
                                     check=True, timeout=60).stdout)
    assert page["size"] == placed.size and page["lines"] == placed.lines
    assert page["rects"] == [dict(x1=r.x1, y1=r.y1, x2=r.x2, y2=r.y2) for r in placed.rects]
    want = [leader(f, r) for f, r in zip(faces, placed.rects, strict=True)]
    assert page["leaders"] == [None if w is None else [list(p) for p in w] for w in want]
