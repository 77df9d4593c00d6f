"""Several trained classifiers as one: the mean of their class probabilities.

Members trained alone from different seeds make different mistakes, so averaging their
probabilities is more accurate than any one of them (mien's bundled expression model is such an
ensemble). The forward pass returns log(mean probability), so softmax of the output is exactly
that mean and an ensemble loads, exports and evaluates as any other softmax classifier.
Each member's logits are divided by its own calibrated temperature first, so the mean is of
the members' probabilities as each alone would give them.

An ensemble is not a zoo architecture: it has no single embedding or head to replace, and it is
built from finished runs (`mien.training.ensemble.combine_runs`), never trained from scratch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class Ensemble(nn.Module):
    task = "classify"

    def __init__(self, members: Sequence[nn.Module], temperatures: Sequence[float] | None = None):
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        self.members = nn.ModuleList(members)
        self.temperatures = [float(t) for t in temperatures or [1.0] * len(members)]
        if len(self.temperatures) != len(members):
            raise ValueError(f"{len(self.temperatures)} temperatures for {len(members)} members")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_p = torch.stack([(m(x).float() / t).log_softmax(1)
                             for m, t in zip(self.members, self.temperatures, strict=True)])
        return torch.logsumexp(log_p, 0) - math.log(len(self.members))
