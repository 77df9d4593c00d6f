// Where face captions go on the page's canvas: a line-for-line port of mien/inference/labels.py
// (read its docstrings); tests/inference/test_labels.py runs both on the same layouts.
// Boxes and labels are {x1, y1, x2, y2} in canvas pixels.
"use strict";

const LABEL_GAP = 2;
const MIN_FONT = 6;
const MAX_SPOTS = 400;
const SEPARATOR = " · ";

function fontSize(width, height) {
  return Math.max(10, Math.min(32, Math.floor(Math.max(width, height) / 45 + 0.5)));
}

function lineHeight(size) { return Math.floor(size * 1.25 + 0.5); }

function padding(size) { return Math.max(2, Math.floor(size / 5 + 0.5)); }

function wrap(parts, measure, maxWidth, separator = SEPARATOR) {
  const lines = [];
  for (const part of parts) {
    if (lines.length && measure(lines[lines.length - 1] + separator + part) <= maxWidth) {
      lines[lines.length - 1] += separator + part;
    } else {
      lines.push(part);
    }
  }
  return lines;
}

function labelLines(parts, box, measure, imageWidth, size) {
  const widest = Math.max(0, ...parts.map(measure));
  const room = imageWidth - 2 * padding(size);
  return wrap(parts, measure, Math.min(room, Math.max(Math.abs(box.x2 - box.x1), widest)));
}

function labelSize(lines, measure, size) {
  const pad = padding(size);
  return [Math.max(0, ...lines.map(measure)) + 2 * pad, lines.length * lineHeight(size) + 2 * pad];
}

function overlaps(a, b) {
  return Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1) > 0 && Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1) > 0;
}

function ordered(b) {
  return { x1: Math.min(b.x1, b.x2), y1: Math.min(b.y1, b.y2), x2: Math.max(b.x1, b.x2), y2: Math.max(b.y1, b.y2) };
}

function candidates(box, w, h, width, height, gap, placed) {
  const maxX = Math.max(0, width - w), maxY = Math.max(0, height - h);
  const xs = [box.x1, box.x2 - w, (box.x1 + box.x2 - w) / 2];
  const ys = [box.y1, box.y2 - h, (box.y1 + box.y2 - h) / 2];
  const row = (y) => {
    const packed = placed.flatMap((other) => [other.x2 + gap, other.x1 - gap - w])
      .filter((x) => x < box.x2 && x + w > box.x1);
    return [...xs, ...packed].map((x) => [x, y]);
  };
  const near = [...row(box.y1 - gap - h), ...row(box.y2 + gap),
    ...ys.map((y) => [box.x2 + gap, y]), ...ys.map((y) => [box.x1 - gap - w, y]),
    [box.x1, box.y1 + gap]];
  const far = placed.flatMap((other) => [[other.x2 + gap, other.y1], [other.x1 - gap - w, other.y1],
    ...xs.map((x) => [x, other.y2 + gap]), ...xs.map((x) => [x, other.y1 - gap - h])]);
  const above = box.y1 - gap - h, stepX = Math.max(w / 2, 1), stepY = h + gap;
  for (let k = Math.ceil(-above / stepY) - 1; k < Math.floor((maxY - above) / stepY) + 2; k++) {
    for (let i = Math.ceil(-box.x1 / stepX) - 1; i < Math.floor((maxX - box.x1) / stepX) + 2; i++) {
      far.push([box.x1 + i * stepX, above + k * stepY]);
    }
  }
  const distance = ([x, y]) => {
    const dx = Math.max(0, box.x1 - (x + w), x - box.x2);
    const dy = Math.max(0, box.y1 - (y + h), y - box.y2);
    return dx * dx + dy * dy;
  };
  far.sort((a, b) => distance(a) - distance(b)); // stable, like Python's sorted
  const out = [], seen = new Set();
  for (let [x, y] of near.concat(far)) {
    x = Math.min(Math.max(0, x), maxX);
    y = Math.min(Math.max(0, y), maxY);
    const key = `${x},${y}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ x1: x, y1: y, x2: x + w, y2: y + h });
      if (out.length === MAX_SPOTS) break;
    }
  }
  return out;
}

function layoutLabels(boxes, sizes, width, height, gap = LABEL_GAP) {
  boxes = boxes.map(ordered);
  const order = boxes.map((_, i) => i).sort((a, b) =>
    boxes[a].y1 - boxes[b].y1 || boxes[a].x1 - boxes[b].x1 || a - b);
  const placed = new Map();
  for (const i of order) {
    const [w, h] = sizes[i];
    let best = null, bestCost = [Infinity, Infinity];
    for (const rect of candidates(boxes[i], w, h, width, height, gap, [...placed.values()])) {
      let onLabels = 0, onFaces = 0;
      for (const other of placed.values()) onLabels += overlaps(rect, other);
      for (const b of boxes) onFaces += overlaps(rect, b);
      if (onLabels < bestCost[0] || (onLabels === bestCost[0] && onFaces < bestCost[1])) {
        best = rect;
        bestCost = [onLabels, onFaces];
        if (onLabels === 0 && onFaces === 0) break;
      }
    }
    placed.set(i, best);
  }
  return boxes.map((_, i) => placed.get(i));
}

function crowded(rects, boxes = []) {
  return rects.some((a, k) => rects.slice(k + 1).some((b) => overlaps(a, b)))
    || rects.some((a) => boxes.some((b) => overlaps(a, b)));
}

function placeCaptions(boxes, parts, measureFor, width, height) {
  boxes = boxes.map(ordered);
  const widest = (size) => Math.max(0, ...parts.flat().map(measureFor(size)));
  let start = fontSize(width, height);
  while (start > MIN_FONT && widest(start) > width - 2 * padding(start)) start--;
  const least = Math.max(MIN_FONT, Math.floor(start * 2 / 3 + 0.5));
  let placed;
  for (const size of [...new Set([start, Math.floor((start + least) / 2), least])].sort((a, b) => b - a)) {
    const measure = measureFor(size);
    const lines = parts.map((p, i) => labelLines(p, boxes[i], measure, width, size));
    const rects = layoutLabels(boxes, lines.map((t) => labelSize(t, measure, size)), width, height);
    placed = { size, lines, rects };
    if (!crowded(rects, boxes)) break;
  }
  return placed;
}

function leader(box, label, gap = LABEL_GAP) {
  box = ordered(box);
  const cx = (label.x1 + label.x2) / 2, cy = (label.y1 + label.y2) / 2;
  const bx = Math.min(Math.max(cx, box.x1), box.x2), by = Math.min(Math.max(cy, box.y1), box.y2);
  const lx = Math.min(Math.max(bx, label.x1), label.x2), ly = Math.min(Math.max(by, label.y1), label.y2);
  if (Math.hypot(bx - lx, by - ly) <= gap + 1) return null;
  return [[lx, ly], [bx, by]];
}

if (typeof module !== "undefined") {
  module.exports = { fontSize, lineHeight, padding, wrap, labelLines, labelSize, layoutLabels,
    crowded, placeCaptions, leader };
}
