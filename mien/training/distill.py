"""Knowledge distillation: a student learns from a teacher's class probabilities as well as from
the labels (Hinton et al. 2015).

The teacher is one or more trained classifiers (run folders, model files or bundled names; several
are averaged, each through its own calibrated temperature and test-time augmentation). Its
probabilities are computed once per training image, before augmentation, and every augmented
copy of the image learns them ("offline" distillation): a forward pass of the teacher per batch
would cost more than the student's whole training step on a CPU, and the augmentations mien uses
(flip, small rotations, shifts, erasing) do not change a face's expression.

What the soft targets teach, beyond the labels: which classes a face resembles (a fearful face
that looks surprised) and which labels are doubtful (FER2013's are noisy: a teacher trained on
all of them gives a mislabelled face only part of its label's weight).

The loss of a batch: (1 - w) * cross-entropy(labels) + w * T^2 * KL(teacher_T || student_T),
where _T means probabilities softened by the temperature T (the teacher's p ** (1/T),
renormalised) and T^2 keeps the gradient's scale as T changes. Class weights weigh the KL term
per image by the weight of its label, as they weigh the cross-entropy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from mien.training.config import ConfigError

CHUNK = 2048  # training images per teacher call: bounds memory


def teacher_specs(teacher: str) -> list[str]:
    return [s.strip() for s in teacher.split(",") if s.strip()]


def teacher_probabilities(teacher: str, images: np.ndarray, classes: Sequence[str],
                          echo: Callable[[str], None] = print) -> np.ndarray:
    """float32 (N, K): the mean calibrated probability of the teacher models for each of
    `images` (uint8, as decoded for training), columns in the order of `classes`."""
    from mien.models.loading import load_classifier

    members = [load_classifier(spec) for spec in teacher_specs(teacher)]
    if not members:
        raise ConfigError(f"teacher {teacher!r}: name at least one model")
    t0 = time.perf_counter()
    total = np.zeros((len(images), len(classes)), np.float64)
    for spec, member in zip(teacher_specs(teacher), members, strict=True):
        if sorted(member.labels) != sorted(classes):
            raise ConfigError(f"teacher {spec}: its classes ({', '.join(member.labels)}) differ "
                              f"from the data's ({', '.join(classes)}); give a teacher trained "
                              "on the same classes")
        order = [member.labels.index(c) for c in classes]
        for lo in range(0, len(images), CHUNK):
            batch = list(images[lo:lo + CHUNK])
            total[lo:lo + CHUNK] += member.predict_proba(batch)[:, order]
    probs = (total / len(members)).astype(np.float32)
    echo(f"teacher: {len(members)} model(s) ({', '.join(teacher_specs(teacher))}), "
         f"probabilities of {len(images)} training images in {time.perf_counter() - t0:.1f}s")
    return probs


def soften(probs, temperature: float):
    """Probabilities at a temperature: p ** (1 / T), renormalised (softmax(log p / T))."""
    import torch

    log_p = torch.log(probs.clamp_min(1e-8)) / temperature
    return torch.softmax(log_p, dim=1)


def distill_loss(logits, teacher_probs, y, *, temperature: float, class_weights=None):
    """T^2 * KL(teacher_T || student_T) per image, averaged (weighted by the labels' class
    weights when given)."""
    import torch

    target = soften(teacher_probs, temperature)
    log_student = torch.log_softmax(logits.float() / temperature, dim=1)
    per = (target * (torch.log(target.clamp_min(1e-8)) - log_student)).sum(dim=1)
    per = per * temperature ** 2
    if class_weights is None:
        return per.mean()
    w = class_weights.to(y.device)[y]
    return (per * w).sum() / w.sum()
