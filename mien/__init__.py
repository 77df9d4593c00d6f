"""mien reads faces: expression, smile and glasses per face, and trains your own classifiers.

Importing mien only defines names; heavy modules (torch, OpenCV, ONNX Runtime) load on first use.
"""

from __future__ import annotations

import logging

from mien.types import Box, Face, Prediction

__version__ = "0.1.0"
__all__ = ["Box", "Face", "Prediction", "__version__", "open_dataset"]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def open_dataset(*args, **kwargs):
    """See `mien.data.datasets.open_dataset`."""
    from mien.data.datasets import open_dataset as _open

    return _open(*args, **kwargs)
