"""Classification metrics as pure numpy functions over integer labels.

Zero-division convention (chosen to match scikit-learn's `zero_division=0` where it is defined):

- precision of a class that was never predicted is 0.0: no prediction earns no credit;
- recall (and so F1) of a class with no samples is undefined: it is `None` here and `null` in
  JSON, and such a class is left out of balanced accuracy and macro-F1, which average over the
  classes that occur in the ground truth;
- F1 is 0.0 when precision and recall are both 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    label: str
    precision: float
    recall: float | None  # None: the class has no samples
    f1: float | None
    support: int  # samples whose true class this is
    predicted: int  # samples predicted as this class

    def to_dict(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                "support": self.support, "predicted": self.predicted}


@dataclass(frozen=True, slots=True)
class ClassificationMetrics:
    labels: tuple[str, ...]
    n: int
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    per_class: tuple[ClassMetrics, ...]
    confusion: tuple[tuple[int, ...], ...]  # confusion[true][predicted], rows in label order
    top_k: tuple[tuple[int, float], ...] = ()  # (k, top-k accuracy) when probabilities were given

    @property
    def confusion_matrix(self) -> np.ndarray:
        return np.array(self.confusion, dtype=np.int64).reshape(len(self.labels), len(self.labels))

    def by_label(self, label: str) -> ClassMetrics:
        return self.per_class[self.labels.index(label)]


def _check_labels(y: np.ndarray, num_classes: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{what} must hold integer class indices, got {y.dtype}")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{what} holds class indices outside 0..{num_classes - 1}")
    return y


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts; row = true class, column = predicted class."""
    t = _check_labels(y_true, num_classes, "y_true")
    p = _check_labels(y_pred, num_classes, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length ({t.size} vs {p.size})")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def accuracy(y_true, y_pred) -> float:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.size == 0:
        raise ValueError("accuracy of zero samples is undefined")
    return float(np.mean(t == p))


def per_class_scores(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 per class from a confusion matrix; NaN marks an undefined
    recall/F1 (class with no samples). See the module docstring for the convention."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.full_like(tp, np.nan), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    f1[support == 0] = np.nan
    return precision, recall, f1


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes that have samples."""
    _, recall, _ = per_class_scores(cm)
    present = ~np.isnan(recall)
    if not present.any():
        raise ValueError("balanced accuracy of zero samples is undefined")
    return float(recall[present].mean())


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over the classes that have samples."""
    _, _, f1 = per_class_scores(cm)
    present = ~np.isnan(f1)
    if not present.any():
        raise ValueError("macro-F1 of zero samples is undefined")
    return float(f1[present].mean())


def top_k_accuracy(y_true, proba: np.ndarray, k: int) -> float:
    """Share of samples whose true class is among the k highest probabilities (ties broken
    towards the lower class index, as argmax does)."""
    proba = np.asarray(proba)
    t = _check_labels(y_true, proba.shape[1], "y_true")
    if t.size == 0:
        raise ValueError("top-k accuracy of zero samples is undefined")
    if not 1 <= k <= proba.shape[1]:
        raise ValueError(f"k={k}: choose 1..{proba.shape[1]}")
    top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == t[:, None]).any(axis=1)))


def _optional(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def classification_metrics(
    y_true,
    y_pred,
    labels: Sequence[str],
    *,
    proba: np.ndarray | None = None,
    top_k: Sequence[int] = (),
) -> ClassificationMetrics:
    """All metrics for integer predictions against integer truth, over `labels` (their order
    fixes the confusion matrix rows and columns). `proba` (N, C) enables top-k accuracy."""
    labels = tuple(labels)
    cm = confusion_matrix(y_true, y_pred, len(labels))
    topk = ()
    if proba is not None and top_k:
        topk = tuple((int(k), top_k_accuracy(y_true, proba, int(k))) for k in top_k)
    return metrics_from_confusion(cm, labels, top_k=topk)


def metrics_from_confusion(
    cm: np.ndarray, labels: Sequence[str], *, top_k: tuple[tuple[int, float], ...] = ()
) -> ClassificationMetrics:
    """The same metrics from a confusion matrix alone (e.g. one saved by training)."""
    labels = tuple(labels)
    cm = np.asarray(cm, dtype=np.int64)
    if cm.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix of shape {cm.shape} for {len(labels)} labels")
    n = int(cm.sum())
    if n == 0:
        raise ValueError("no samples to score")
    precision, recall, f1 = per_class_scores(cm)
    per_class = tuple(
        ClassMetrics(label, float(precision[i]), _optional(recall[i]), _optional(f1[i]),
                     int(cm[i].sum()), int(cm[:, i].sum()))
        for i, label in enumerate(labels)
    )
    return ClassificationMetrics(
        labels=labels,
        n=n,
        accuracy=float(np.trace(cm) / n),
        balanced_accuracy=balanced_accuracy(cm),
        macro_f1=macro_f1(cm),
        per_class=per_class,
        confusion=tuple(tuple(int(v) for v in row) for row in cm),
        top_k=top_k,
    )
