"""Temperature scaling and expected calibration error, in numpy alone.

A classifier is calibrated when, of the faces it answers with confidence 0.8, about 80 % are
right. Networks trained with cross-entropy are usually over-confident; temperature scaling
(Guo et al., ICML 2017) divides the model's outputs by one number T > 0, fitted on validation
data by minimising the negative log-likelihood. It never changes which class a single view
ranks first, so accuracy stays as it is.

What T divides depends on the model record's `activation`; `mien.models.activations` holds
that rule (`probabilities`), which `mien.models.loading` applies at inference.

Test-time augmentation averages the probabilities of several views (the face and its mirror):
T applies to each view's outputs before the average, as at inference, and `fit_temperature`
takes the views stacked as (V, N, K).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mien.models.activations import (  # noqa: F401  (callers import them here too)
    ACTIVATIONS,
    EPS,
    probabilities,
    view_probabilities,
)

T_BOUNDS = (0.05, 20.0)  # beyond these the model is broken or the validation data too easy
ECE_BINS = 15  # the usual choice since Guo et al.


def negative_log_likelihood(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean -log p(true class)."""
    y = np.asarray(y, dtype=np.int64)
    return float(-np.mean(np.log(np.maximum(proba[np.arange(len(y)), y], EPS))))


def fit_temperature(logits: np.ndarray, y: np.ndarray, *, activation: str = "softmax",
                    bounds: tuple[float, float] = T_BOUNDS) -> float:
    """The T in `bounds` minimising the mean NLL of `view_probabilities(logits, activation, T)`
    against the integer labels `y`. Deterministic: a grid over log T, then golden-section
    search around its best point (the NLL is unimodal in log T for softmax)."""
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        raise ValueError("fitting a temperature needs at least one labelled sample")

    def loss(log_t: float) -> float:
        return negative_log_likelihood(view_probabilities(logits, activation, np.exp(log_t)), y)

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    grid = np.linspace(lo, hi, 41)
    best = int(np.argmin([loss(t) for t in grid]))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    while b - a > 1e-6:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return float(np.exp((a + b) / 2.0))


@dataclass(frozen=True, slots=True)
class Reliability:
    """Top-label confidence against accuracy in equal-width bins of (0, 1]: what a reliability
    diagram draws. Empty bins hold NaN accuracy and confidence."""

    edges: np.ndarray  # (bins + 1,) from 0 to 1
    counts: np.ndarray  # (bins,) int64
    accuracy: np.ndarray  # (bins,) share of right answers per bin
    confidence: np.ndarray  # (bins,) mean top probability per bin
    ece: float

    @property
    def n(self) -> int:
        return int(self.counts.sum())


def reliability(proba: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    """Per-bin accuracy and confidence of the top label; a confidence c falls in the bin
    (lo, hi] holding it (0 in the first)."""
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0 or proba.shape != (len(y), proba.shape[1]):
        raise ValueError(f"probabilities of shape {proba.shape} for {len(y)} labels")
    conf = proba.max(axis=1)
    right = (proba.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(which, right, bins) / counts
        mean_conf = np.bincount(which, conf, bins) / counts
    filled = counts > 0
    ece = float(np.sum(np.abs(acc[filled] - mean_conf[filled]) * counts[filled]) / len(y))
    return Reliability(edges, counts.astype(np.int64), acc, mean_conf, ece)


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: the count-weighted mean |accuracy - confidence| over equal-width bins."""
    return reliability(proba, y, bins).ece


@dataclass(frozen=True, slots=True)
class Calibration:
    """A fitted temperature and the ECE of the model's probabilities before and after it, on
    the `n` labelled images it was fitted on."""

    temperature: float
    ece_before: float
    ece_after: float
    n: int

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "ece_before": self.ece_before,
                "ece_after": self.ece_after, "n": self.n}


def calibrate(outputs: np.ndarray, y: np.ndarray, activation: str = "softmax",
              temperature: float = 1.0, bins: int = ECE_BINS) -> Calibration:
    """Fit the temperature of a model's raw outputs (V, N, K) or (N, K) on labels `y`; "before"
    is the model as it predicts now, with its current `temperature`."""
    fitted = fit_temperature(outputs, y, activation=activation)
    return Calibration(
        temperature=fitted,
        ece_before=expected_calibration_error(
            view_probabilities(outputs, activation, temperature), y, bins),
        ece_after=expected_calibration_error(view_probabilities(outputs, activation, fitted), y,
                                             bins),
        n=int(len(y)))
