"""dlib's 128-D face embedding (ResNet-29 trained for face recognition; weights CC0 from the
face-recognition-models package) as a backbone for heads. Optional: `pip install 'mien[dlib]'`.

dlib expects 150x150 RGB chips aligned as `dlib.get_face_chip` makes them (eyes level, 25%
padding); dataset crops are resized to that size as they are, which is close but not the same.
It runs on the CPU, one image at a time in dlib's own threads: expect well under 10 images/s
per core, so embed subsets or let the cache keep the result.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mien.data.preprocess import Preprocess
from mien.errors import ModelFileError, require

WEIGHTS = "dlib_face_recognition_resnet_model_v1.dat"
CHIP = (150, 150)


def weights_path() -> Path:
    """The ResNet weights inside face-recognition-models, found without importing the package
    (its __init__ needs pkg_resources, which current setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        require("face_recognition_models", "dlib")  # raises with the install command
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / WEIGHTS
    if not path.is_file():
        raise ModelFileError(f"{path}: missing from face-recognition-models; reinstall it with "
                             "`pip install --force-reinstall face-recognition-models`")
    return path


class DlibEmbedder:
    def __init__(self):
        from mien.runfiles import sha256_of

        dlib = require("dlib", "dlib")
        self.path = weights_path()
        self.sha256 = sha256_of(self.path)
        self._model = dlib.face_recognition_model_v1(str(self.path))
        self.preprocess = Preprocess(input_size=CHIP, color="rgb", mean=(0.0,) * 3,
                                     std=(1.0,) * 3)
        self.key = f"dlib-resnet-{self.sha256[:16]}"

    def embed(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        chips = [np.ascontiguousarray(self.preprocess.image(im)) for im in images]
        if not chips:
            return np.empty((0, 128), np.float32)
        return np.asarray(self._model.compute_face_descriptor(chips), dtype=np.float32)

    def reference(self) -> dict[str, Any]:
        return {"kind": "dlib-resnet", "file": WEIGHTS, "sha256": self.sha256}
