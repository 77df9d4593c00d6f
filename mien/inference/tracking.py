"""Following faces across video frames: a greedy IoU tracker, per-track smoothing of the
classifiers' probabilities, and per-track summaries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mien.types import Box, Prediction


class IoUTracker:
    """Gives each box the id of the track whose last box overlaps it most (IoU >= `min_iou`),
    else a new id. Tracks unseen for more than `max_age` updates are forgotten, so a face that
    leaves and comes back later gets a new id."""

    def __init__(self, min_iou: float = 0.3, max_age: int = 10):
        self.min_iou = min_iou
        self.max_age = max_age
        self._tracks: dict[int, tuple[Box, int]] = {}  # id -> (last box, updates since seen)
        self._next_id = 1

    def update(self, boxes: Sequence[Box]) -> list[int]:
        ids = list(self._tracks)
        pairs = sorted(
            ((box.iou(self._tracks[t][0]), i, t) for i, box in enumerate(boxes) for t in ids),
            reverse=True,
        )
        assigned: dict[int, int] = {}
        taken: set[int] = set()
        for overlap, i, t in pairs:
            if overlap < self.min_iou:
                break
            if i not in assigned and t not in taken:
                assigned[i] = t
                taken.add(t)
        out = []
        for i, box in enumerate(boxes):
            if i not in assigned:
                assigned[i] = self._next_id
                self._next_id += 1
            out.append(assigned[i])
            self._tracks[assigned[i]] = (box, 0)
        for t in ids:
            if t not in taken:
                box, age = self._tracks[t]
                if age + 1 > self.max_age:
                    del self._tracks[t]
                else:
                    self._tracks[t] = (box, age + 1)
        return out


class ProbabilitySmoother:
    """Exponential moving average of each track's class probabilities: `alpha` weighs the new
    frame (1.0 = no smoothing), so one odd frame does not flip a label."""

    def __init__(self, alpha: float = 0.5):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"smoothing alpha {alpha}: use a value in (0, 1]")
        self.alpha = alpha
        self._state: dict[tuple[int, str], np.ndarray] = {}

    def update(self, track_id: int, attribute: str, prediction: Prediction) -> Prediction:
        labels = list(prediction.probabilities)
        probs = np.array([prediction.probabilities[k] for k in labels], np.float64)
        key = (track_id, attribute)
        if key in self._state and len(self._state[key]) == len(probs):
            probs = self.alpha * probs + (1 - self.alpha) * self._state[key]
        self._state[key] = probs
        best = int(np.argmax(probs))
        return Prediction(
            labels[best],
            float(probs[best]),
            {k: float(p) for k, p in zip(labels, probs, strict=True)},
        )


@dataclass(frozen=True, slots=True)
class TrackSummary:
    source: str
    track_id: int
    frames: int
    first_frame: int
    last_frame: int
    start: float | None
    end: float | None
    dominant: dict[str, str]  # attribute -> most frequent label
    shares: dict[str, dict[str, float]]  # attribute -> label -> share of the track's frames


@dataclass
class TrackSummarizer:
    """Collects (source, frame, timestamp, face) and summarises each track."""

    _tracks: dict[tuple[str, int], dict] = field(default_factory=dict)

    def add(self, source: str, frame: int, timestamp: float | None, face) -> None:
        if face.track_id is None:
            return
        t = self._tracks.setdefault(
            (source, face.track_id),
            {
                "frames": 0,
                "first": frame,
                "last": frame,
                "start": timestamp,
                "end": timestamp,
                "labels": {},
            },
        )
        t["frames"] += 1
        t["last"], t["end"] = frame, timestamp
        for name, pred in face.attributes.items():
            t["labels"].setdefault(name, Counter())[pred.label] += 1

    def summaries(self) -> list[TrackSummary]:
        out = []
        for (source, track_id), t in self._tracks.items():
            shares = {
                name: {label: n / t["frames"] for label, n in counts.most_common()}
                for name, counts in t["labels"].items()
            }
            dominant = {name: counts.most_common(1)[0][0] for name, counts in t["labels"].items()}
            out.append(
                TrackSummary(
                    source,
                    track_id,
                    t["frames"],
                    t["first"],
                    t["last"],
                    t["start"],
                    t["end"],
                    dominant,
                    shares,
                )
            )
        return out
