"""Anomaly-detector pictures as PNG bytes (built without pyplot, as the evaluation plots)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mien.evaluation.plots import new_figure, to_png


def score_histogram_png(scores: np.ndarray, y_true: np.ndarray, labels: Sequence[str],
                        threshold: float, score_name: str) -> bytes:
    """Score distribution of each true class (as densities, so unequal class sizes compare)
    with the decision threshold."""
    scores = np.asarray(scores, np.float64)
    fig = new_figure(6.4, 3.8)
    ax = fig.subplots()
    bins = np.histogram_bin_edges(scores, bins=40) if scores.size else 10
    for c, label in enumerate(labels):
        s = scores[np.asarray(y_true) == c]
        if s.size:
            ax.hist(s, bins=bins, density=True, alpha=0.5, label=f"{label} (n={s.size})")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set_xlabel(f"{score_name} score (pixel units)")
    ax.set_ylabel("density")
    ax.set_title("anomaly scores per true class")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return to_png(fig)


def reconstructions_png(originals: np.ndarray, recon: np.ndarray,
                        captions: Sequence[str]) -> bytes:
    """[0, 1] float (N, C, H, W) originals in the top row, reconstructions under them."""
    n = max(len(originals), 1)
    fig = new_figure(1.5 * n, 3.6)
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        for row, images in enumerate((originals, recon)):
            ax = axes[row, i]
            ax.axis("off")
            if i < len(images):
                img = np.asarray(images[i]).transpose(1, 2, 0)
                gray = img.shape[2] == 1
                ax.imshow(img[:, :, 0] if gray else img, cmap="gray" if gray else None,
                          vmin=0, vmax=1)
                if row == 0:
                    ax.set_title(captions[i], fontsize=7)
    fig.tight_layout()
    return to_png(fig)
