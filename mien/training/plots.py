"""The two pictures a run folder holds: learning curves and the validation confusion matrix.
Figures are built without pyplot, so plotting leaves no global state behind."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_curves(history: Sequence[Mapping], path: str | os.PathLike) -> None:
    """Loss and accuracy per epoch, train against validation."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(10, 4)
    epochs = [h["epoch"] for h in history]
    for ax, key, title in zip(fig.subplots(1, 2), ("loss", "accuracy"), ("loss", "accuracy"),
                              strict=True):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], "o-", label="val")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: str | os.PathLike,
                   title: str = "validation") -> None:
    """Rows: true class, columns: predicted; cells show counts, colour shows the row share."""
    matrix = np.asarray(matrix)
    k = len(labels)
    fig = _figure(1.2 + 0.7 * k, 1.0 + 0.6 * k)
    ax = fig.subplots()
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"{title}: accuracy {acc:.3f}")
    fig.tight_layout()
    fig.savefig(path)
