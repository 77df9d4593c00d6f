"""Losses, the optimizer with its parameter groups, and the learning-rate schedule."""

from __future__ import annotations

import math

import numpy as np

from mien.training.config import TrainConfig


def class_weights(labels: np.ndarray, num_classes: int, kind: str) -> np.ndarray | None:
    """"balanced": n / (k * count_c), so every class weighs the same in total (sklearn's rule);
    "sqrt": its square root, which lifts a rare class (FER's disgust, 1.5 % of the faces) without
    costing the common ones as much accuracy."""
    if kind == "none":
        return None
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    balanced = len(labels) / (num_classes * np.maximum(counts, 1))
    return (np.sqrt(balanced) if kind == "sqrt" else balanced).astype(np.float32)


def make_loss(kind: str, *, label_smoothing: float = 0.0, weights=None):
    """loss(logits, targets) -> scalar tensor, for integer class targets."""
    import torch
    import torch.nn.functional as F

    w = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)

    def per_sample_weight(y):
        return None if w is None else w.to(y.device)[y]

    if kind == "cross_entropy":
        def loss(logits, y):
            return F.cross_entropy(logits.float(), y, weight=None if w is None else w.to(y.device),
                                   label_smoothing=label_smoothing)
    elif kind == "squared_hinge":
        # One-vs-rest L2-SVM on the logits (Tang 2013), averaged over classes as Keras'
        # squared_hinge, so the reports' output-layer L2 weighs the same against it.
        def loss(logits, y):
            target = -torch.ones_like(logits, dtype=torch.float32)
            target[torch.arange(len(y)), y] = 1.0
            per = torch.clamp(1.0 - target * logits.float(), min=0.0).pow(2).mean(dim=1)
            sw = per_sample_weight(y)
            return per.mean() if sw is None else (per * sw).sum() / sw.sum()
    elif kind == "bce":
        def loss(logits, y):
            if logits.shape[1] == 1:  # one sigmoid output for a binary task: P(class 1)
                target = y.float()[:, None]
            else:
                target = F.one_hot(y, logits.shape[1]).float()
            per = F.binary_cross_entropy_with_logits(logits.float(), target,
                                                     reduction="none").sum(dim=1)
            sw = per_sample_weight(y)
            return per.mean() if sw is None else (per * sw).sum() / sw.sum()
    else:
        raise ValueError(f"loss {kind!r}")
    return loss


def predict(logits):
    """Class indices from logits; a single output column is a binary sigmoid (class 1 if > 0)."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


def activation_for(loss: str) -> str:
    """How logits become probabilities at inference: BCE trains independent sigmoids."""
    return "sigmoid" if loss == "bce" else "softmax"


def make_optimizer(cfg: TrainConfig, model, *, transfer: bool):
    """Backbone and head as separate groups: a transferred backbone learns at lr * mult, or not at
    all when frozen."""
    import torch

    head = [p for p in model.head_parameters() if p.requires_grad]
    backbone = [p for p in model.backbone_parameters() if p.requires_grad]
    groups = [{"params": head, "lr": cfg.lr, "name": "head"}]
    if backbone:
        mult = cfg.backbone_lr_mult if transfer else 1.0
        groups.append({"params": backbone, "lr": cfg.lr * mult, "name": "backbone"})
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, steps_per_epoch: int, cfg: TrainConfig,
              time_fraction: float | None = None) -> float:
    """Multiplier of each group's base lr at optimizer step `step` (0-based). `time_fraction`
    (elapsed / max_minutes) moves cosine and one-cycle on when the time budget, not the epoch
    count, will end the run, so the lr has annealed by the time it stops."""
    epoch = step / steps_per_epoch
    warm = cfg.warmup_epochs
    if warm and epoch < warm:
        return (step + 1) / (warm * steps_per_epoch)
    t = min(max((epoch - warm) / max(cfg.epochs - warm, 1e-9), 0.0), 1.0)
    if time_fraction is not None:
        t = min(max(t, time_fraction), 1.0)
    if cfg.schedule == "step":
        return 0.1 ** math.floor(epoch / cfg.step_epochs)
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if cfg.schedule == "onecycle":
        # Smith's one-cycle: rise from lr/25 over the first 30 %, then cosine down to ~0.
        if t < 0.3:
            return 0.04 + 0.96 * 0.5 * (1.0 - math.cos(math.pi * t / 0.3))
        return 0.5 * (1.0 + math.cos(math.pi * (t - 0.3) / 0.7))
    return 1.0
