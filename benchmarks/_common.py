"""Helpers shared by the benchmark scripts (run as `python benchmarks/NAME.py`)."""

from __future__ import annotations

import sys


def set_threads(n: int) -> None:
    """OpenCV's and torch's pools (ONNX Runtime sessions keep the count they were made with)."""
    import cv2

    cv2.setNumThreads(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
