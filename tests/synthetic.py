"""Generated images shared by several test folders (tests/ is on sys.path under pytest)."""

import struct
import zlib
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


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header announcing width x height gray pixels, with one compressed row:
    a few hundred bytes that would decode to width*height bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(
        b"IEND", b"")
