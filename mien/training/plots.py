"""The two pictures a run folder holds, drawn by the evaluation report's plotters so a run
folder and a report show the same figures."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mien.evaluation.plots import confusion_png, curves_png


def plot_curves(history: Sequence[Mapping], path: str | os.PathLike) -> None:
    """Loss and accuracy per epoch, train against validation."""
    Path(path).write_bytes(curves_png(list(history)))


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: str | os.PathLike,
                   title: str = "validation") -> None:
    """Rows: true class, columns: predicted; cells show counts, colour shows the row share."""
    matrix = np.asarray(matrix)
    acc = np.trace(matrix) / max(matrix.sum(), 1)
    Path(path).write_bytes(confusion_png(matrix, labels, title=f"{title}: accuracy {acc:.3f}"))
