"""Frozen, typed results shared by detection, inference, evaluation and the API."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Box:
    """Pixel box, (x1, y1) top-left inclusive, (x2, y2) bottom-right exclusive."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


UNCERTAIN = "uncertain"  # the label of an answer below the caller's minimum confidence


@dataclass(frozen=True, slots=True)
class Prediction:
    """One attribute's answer for one face: the winning label and every class probability.
    With a minimum confidence, a winner whose probability (`score`) is below it is labelled
    `uncertain`; score and probabilities stay as the model gave them."""

    label: str
    score: float
    probabilities: dict[str, float]

    @property
    def uncertain(self) -> bool:
        return self.label == UNCERTAIN


@dataclass(frozen=True, slots=True)
class Face:
    """A detected face. Landmarks, when the detector gives them, are five (x, y) points: the eye
    on the image's left (the subject's right eye), the other eye, nose tip, the mouth corner on
    the image's left, the other mouth corner."""

    box: Box
    score: float
    landmarks: tuple[tuple[float, float], ...] = ()
    attributes: dict[str, Prediction] = field(default_factory=dict)
    track_id: int | None = None
    # Too small for the classifiers to judge (mien.inference.pipeline.MIN_JUDGED_FACE): the face
    # is reported with its box and no attributes, rather than with guesses.
    small: bool = False
