"""Generated images shared by several test folders (tests/ is on sys.path under pytest)."""

from pathlib import Path

import numpy as np
from PIL import Image


def make_stripes(root: Path, per_class: int = 20, seed: int = 0) -> Path:
    """Two classes a CNN tells apart in an epoch or two: horizontal vs vertical stripes, noisy,
    random phase (left-right flips keep the class)."""
    rng = np.random.default_rng(seed)
    for name in ("horizontal", "vertical"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            period = int(rng.integers(3, 7))
            stripes = ((np.arange(48) + rng.integers(0, 8)) // period % 2) * 150.0 + 50.0
            img = np.broadcast_to(stripes[:, None] if name == "horizontal" else stripes[None, :],
                                  (48, 48))
            img = np.clip(img + rng.normal(0, 20, (48, 48)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{i:03d}.png")
    return root
