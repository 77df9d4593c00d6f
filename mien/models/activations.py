"""How a saved model's outputs become probabilities: the record's `activation` and
`temperature` (docs/design.md, "Model metadata"), in numpy alone. Temperature scaling itself
(fitting T) is `mien.evaluation.calibration`.

What T divides depends on the model record's `activation`, so that one rule serves every saved
model (`mien.models.loading` applies the same `probabilities`):

- "softmax": the logits; p = softmax(z / T).
- "sigmoid": each output's logit; p_k = sigmoid(z_k / T), rescaled to sum to 1 (one output:
  [1 - p, p]).
- "probabilities" (outputs that are probabilities already): their logarithm; p = softmax(log(q)
  / T), i.e. q ** (1 / T) renormalised. An ensemble's output, the log of its members' mean
  probability, is this same log(q) under "softmax".
"""

from __future__ import annotations

import numpy as np

ACTIVATIONS = ("softmax", "sigmoid", "probabilities")
EPS = 1e-12  # floor under probabilities before a log or a division


def probabilities(outputs: np.ndarray, activation: str = "softmax",
                  temperature: float = 1.0) -> np.ndarray:
    """Model outputs (N, K) -> float64 probabilities (N, K'), rows summing to 1 (K' = 2 for a
    single sigmoid output). See the module docstring for what T divides."""
    z = np.asarray(outputs, dtype=np.float64)
    if activation == "probabilities":
        z = np.log(np.maximum(z, EPS))
        activation = "softmax"
    z = z / temperature
    if activation == "sigmoid":
        p = 1.0 / (1.0 + np.exp(-z))  # independent per class (BCE); rescaled to sum to 1
        if p.shape[1] == 1:  # one output: P(second class) of a binary model
            p = np.concatenate([1.0 - p, p], axis=1)
    elif activation == "softmax":
        p = np.exp(z - z.max(axis=1, keepdims=True))
    else:
        raise ValueError(f"activation {activation!r}: use one of {', '.join(ACTIVATIONS)}")
    return p / np.maximum(p.sum(axis=1, keepdims=True), EPS)


def view_probabilities(views: np.ndarray, activation: str = "softmax",
                       temperature: float = 1.0) -> np.ndarray:
    """Outputs of V views (V, N, K), or of one (N, K) -> the mean of their probabilities."""
    views = np.asarray(views)
    if views.ndim == 2:
        views = views[None]
    return np.mean([probabilities(v, activation, temperature) for v in views], axis=0)
