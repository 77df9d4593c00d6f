"""mien reads faces: expression, smile and glasses per face, and trains your own classifiers.

Importing mien only defines names; heavy modules (torch, OpenCV, ONNX Runtime) load on first use.
"""

from __future__ import annotations

import logging
import os

from mien.types import Box, Face, Prediction

__version__ = "0.1.0"
__all__ = ["Box", "Face", "Prediction", "__version__", "analyze", "open_dataset"]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def open_dataset(*args, **kwargs):
    """See `mien.data.datasets.open_dataset`."""
    from mien.data.datasets import open_dataset as _open

    return _open(*args, **kwargs)


_default_pipelines: dict = {}
_SUBPACKAGES = frozenset({"api", "cli", "data", "detection", "evaluation", "heads", "inference",
                          "models", "training"})


def __getattr__(name: str):
    """`mien.inference.Pipeline` and the like: a subpackage is imported on first use."""
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def analyze(image_or_path, *, detector: str | None = None, attributes=None,
            min_confidence: float | None = None, as_frame: bool = False):
    """Faces in one picture (path, encoded bytes, uint8 RGB array or PIL image), best first,
    each with its attributes (every installed bundled classifier unless `attributes` names
    others); an answer whose top probability is below `min_confidence` is labelled `uncertain`.
    as_frame: a pandas DataFrame, one row per face with the columns of `mien analyze`'s CSV,
    instead of a list of Face (needs `pip install 'mien[pandas]'`).
    The pipeline is built on first use and reused; see `mien.inference.Pipeline` for more."""
    from mien.inference.pipeline import Pipeline

    if isinstance(attributes, dict):  # classifier objects: nothing stable to cache on
        pipeline = Pipeline(detector, attributes, min_confidence=min_confidence)
    else:
        key = (detector, tuple(attributes) if attributes is not None else None, min_confidence)
        if key not in _default_pipelines:
            _default_pipelines[key] = Pipeline(detector, attributes,
                                               min_confidence=min_confidence)
        pipeline = _default_pipelines[key]
    if not as_frame:
        return pipeline.analyze(image_or_path)
    from mien.errors import require
    from mien.inference.writers import faces_dataframe

    require("pandas", "pandas")  # before the work, not after it
    path_given = isinstance(image_or_path, (str, os.PathLike))
    source = os.fspath(image_or_path) if path_given else "<image>"
    return faces_dataframe(pipeline.analyze(image_or_path), pipeline.labels, source,
                           getattr(pipeline.detector, "name", None))
