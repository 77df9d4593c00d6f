"""The pictures of an evaluation report, as PNG bytes. Figures are built without pyplot, so
plotting leaves no global state behind."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np


def new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def confusion_png(cm: np.ndarray, labels: Sequence[str], *, normalize: bool = False,
                  title: str = "") -> bytes:
    """Rows: true class, columns: predicted. `normalize` shows each row's shares (recall on the
    diagonal); a class with no samples keeps an empty row."""
    cm = np.asarray(cm, dtype=np.float64)
    k = len(labels)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig = new_figure(1.6 + 0.75 * k, 1.2 + 0.65 * k)
    ax = fig.subplots()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            text = f"{share[i, j]:.2f}" if normalize else str(int(cm[i, j]))
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("row-normalised" if normalize else "counts"))
    fig.tight_layout()
    return to_png(fig)


def class_counts_png(labels: Sequence[str], support: Sequence[int],
                     predicted: Sequence[int]) -> bytes:
    """Per class, how many images are of it against how many were predicted as it."""
    k = len(labels)
    x = np.arange(k)
    fig = new_figure(max(5.0, 1.0 + 0.8 * k), 3.6)
    ax = fig.subplots()
    ax.bar(x - 0.2, support, 0.4, label="actual")
    ax.bar(x + 0.2, predicted, 0.4, label="predicted")
    ax.set_xticks(x, labels, rotation=45, ha="right")
    ax.set_ylabel("images")
    ax.set_title("actual vs predicted per class")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return to_png(fig)


def image_grid_png(images: Sequence[np.ndarray], captions: Sequence[str], *,
                   cols: int = 6) -> bytes:
    """Thumbnails (uint8 gray or RGB) in a grid, each captioned."""
    n = max(len(images), 1)
    cols = min(cols, n)
    rows = -(-n // cols)
    fig = new_figure(1.7 * cols, 1.95 * rows)
    for i, ax in enumerate(fig.subplots(rows, cols, squeeze=False).ravel()):
        ax.axis("off")
        if i < len(images):
            img = images[i]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_title(captions[i], fontsize=7)
    fig.tight_layout()
    return to_png(fig)


def curves_png(history: Sequence[dict]) -> bytes:
    """Training curves: every `train_X` / `val_X` series of a run's per-epoch history."""
    from matplotlib.ticker import MaxNLocator

    keys = sorted({k.split("_", 1)[1] for h in history for k in h
                   if k.startswith(("train_", "val_"))})
    fig = new_figure(5 * max(len(keys), 1), 3.6)
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    for ax, key in zip(np.atleast_1d(fig.subplots(1, max(len(keys), 1))), keys, strict=False):
        for split in ("train", "val"):
            values = [h.get(f"{split}_{key}") for h in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], "o-", label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return to_png(fig)


def reliability_png(bins, title: str = "") -> bytes:
    """A reliability diagram from `mien.evaluation.calibration.reliability`: accuracy against
    confidence per bin with the diagonal of perfect calibration, the bins' image counts below."""
    edges, counts = np.asarray(bins.edges), np.asarray(bins.counts)
    width = np.diff(edges)
    filled = counts > 0
    fig = new_figure(5.0, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfectly calibrated")
    top.bar(edges[:-1][filled], bins.accuracy[filled], width[filled], align="edge",
            edgecolor="black", alpha=0.8, label="accuracy")
    top.bar(edges[:-1][filled], (bins.confidence - bins.accuracy)[filled], width[filled],
            bottom=bins.accuracy[filled], align="edge", color="red", alpha=0.25,
            label="gap to confidence")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(title or f"reliability: ECE {bins.ece:.4f} ({bins.n} images)")
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.bar(edges[:-1], counts, width, align="edge", edgecolor="black")
    for x, w, c in zip(edges[:-1], width, counts, strict=True):
        if c:
            bottom.text(x + w / 2, c, str(int(c)), ha="center", va="bottom", fontsize=7)
    bottom.set_xlabel("confidence (top probability)")
    bottom.set_ylabel("images")
    bottom.set_ylim(0, max(int(counts.max()), 1) * 1.25)
    fig.tight_layout()
    return to_png(fig)
