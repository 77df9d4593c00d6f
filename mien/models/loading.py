"""`load_classifier(spec)`: one entry for every kind of trained classifier (docs/design.md).

spec is a bundled name (`mien/models/weights/<name>.onnx` with its `<name>.json` card), a run
folder, a `.safetensors` checkpoint or a `.onnx` file. A run folder or file loads through the
loader its kind registers in `mien.runfiles.RUN_KINDS` (head runs and anomaly detectors live in
`mien.heads`, imported only for such a run). ONNX Runtime runs bundled and ONNX models and this
module never imports torch for them; checkpoints run on torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mien import runfiles
from mien.data.preprocess import Framing, Preprocess
from mien.errors import ModelFileError
from mien.models.activations import ACTIVATIONS, view_probabilities
from mien.runfiles import bundled_models, parse_record, run_kind, run_loader, sha256_of

BATCH = 256  # images per forward pass: bounds memory for long lists at little speed cost
TTA_MODES = ("none", "flip")  # test-time augmentation a saved record may ask for


class Classifier(Protocol):
    name: str
    labels: tuple[str, ...]
    preprocess: Preprocess
    input_size: tuple[int, int]

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


class _Base:
    def __init__(self, name: str, record: Mapping[str, Any], path: str | os.PathLike):
        self.name = name
        self.record = dict(record)
        self.path = Path(path)
        self.labels: tuple[str, ...] = tuple(record["labels"])
        self.preprocess = Preprocess.from_dict(record["preprocess"])
        self.input_size: tuple[int, int] = self.preprocess.input_size
        # how the pipeline crops faces for this model (record "framing"; older files: default)
        self.framing = Framing.from_dict(record.get("framing"))
        self.activation: str = record.get("activation", "softmax")
        if self.activation not in ACTIVATIONS:
            raise ModelFileError(f"{path}: unknown activation {self.activation!r} in its "
                                 "record; upgrade mien or re-export the model")
        # "flip": every prediction averages the face and its mirror (TrainConfig.tta).
        self.tta: str = record.get("tta", "none")
        if self.tta not in TTA_MODES:
            raise ModelFileError(f"{path}: unknown test-time augmentation {self.tta!r} in its "
                                 "record; upgrade mien or re-export the model")
        # outputs / T before the activation (mien.evaluation.calibration); absent: 1, as before
        temperature = record.get("temperature", 1.0)
        if not isinstance(temperature, int | float) or not 0 < temperature < float("inf"):
            raise ModelFileError(f"{path}: temperature {temperature!r} in its record is not a "
                                 "positive number; re-calibrate it with `mien calibrate`")
        self.temperature = float(temperature)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, labels={list(self.labels)})"

    def _logits(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def outputs(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The network's raw outputs per test-time view: float (V, N, K), V = 2 with flip TTA
        (the face, then its mirror). What calibration fits the temperature on."""
        out = []
        for s in range(0, len(images), BATCH):
            x = self.preprocess(images[s:s + BATCH])
            z = [self._logits(x)]
            if self.tta == "flip":  # preprocessing commutes with the mirror: flip its output
                z.append(self._logits(np.ascontiguousarray(x[..., ::-1])))
            out.append(np.stack(z))
        if not out:
            return np.empty((2 if self.tta == "flip" else 1, 0, len(self.labels)), np.float32)
        return np.concatenate(out, axis=1)

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """uint8 images of any size and colour -> float32 (N, num_classes), rows summing to 1:
        each view's outputs / temperature through the activation, views averaged."""
        return view_probabilities(self.outputs(images), self.activation,
                                  self.temperature).astype(np.float32)


class OnnxClassifier(_Base):
    def __init__(self, path: str | os.PathLike, name: str | None = None,
                 record: Mapping | None = None, threads: int | None = None):
        import onnxruntime as ort

        path = Path(path)
        self.threads = threads  # ONNX Runtime's intra-op threads; None: one per core
        try:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            # Idle pool threads that spin burn a core between the small batches of an analysis
            # (and starve the detector running beside them): they sleep instead.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if threads:
                opts.intra_op_num_threads = threads
            self._session = ort.InferenceSession(str(path), opts,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ModelFileError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0]}); "
                                 "re-export it") from exc
        if record is None:
            meta = self._session.get_modelmeta().custom_metadata_map
            record = parse_record(meta.get("mien"), path, required=("labels", "preprocess"))
        super().__init__(name or path.stem, record, path)
        self._input = self._session.get_inputs()[0].name

    def _logits(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: x})[0]

    def release_memory(self) -> None:
        """A one-face run after which ONNX Runtime frees the arena blocks no run uses: the
        arena otherwise stays as large as the largest batch seen (a server gone idle)."""
        import onnxruntime as ort

        options = ort.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        declared = self._session.get_inputs()[0]
        shape = [1, *declared.shape[1:]]
        if declared.type != "tensor(float)" or not all(isinstance(d, int) for d in shape):
            return  # a file of other shapes than mien exports: left as it is
        self._session.run(None, {self._input: np.zeros(shape, np.float32)}, options)

    @property
    def fork_safe(self) -> bool:
        """Usable in a worker process forked after it was built (mien.inference.workers): only
        on one thread, as a session's pool threads are not forked with it."""
        return self.threads == 1

    def with_threads(self, threads: int | None) -> OnnxClassifier:
        """The same model (file already verified) on a session with `threads` intra-op threads."""
        if threads == self.threads:
            return self
        return OnnxClassifier(self.path, self.name, self.record, threads)


class TorchClassifier(_Base):
    def __init__(self, path: str | os.PathLike, name: str | None = None):
        from mien.models.build import build_model
        from mien.runfiles import load_weights

        path = Path(path)
        state, record = load_weights(path)
        super().__init__(name or path.stem, record, path)
        self.model = build_model(record, state, path=path).eval()

    def _logits(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model(torch.from_numpy(x)).float().numpy()


def _load_bundled(name: str) -> OnnxClassifier:
    folder = runfiles.weights_dir()
    card_file = folder / f"{name}.json"
    if not card_file.is_file():
        have = ", ".join(bundled_models()) or "none are installed yet"
        raise ModelFileError(f"{name!r}: no such file, run folder or bundled model (bundled: "
                             f"{have}); give a .onnx or .safetensors file or a run folder")
    try:
        card = json.loads(card_file.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{card_file}: model card is not valid JSON; reinstall mien") from exc
    onnx_file = folder / card.get("file", f"{name}.onnx")
    if not onnx_file.is_file():
        raise ModelFileError(f"{onnx_file}: bundled weights missing; reinstall mien")
    path = Path(str(onnx_file))
    if card.get("sha256") != sha256_of(path):
        raise ModelFileError(f"{path}: SHA-256 differs from its card {card_file.name}; the file is "
                             "damaged or replaced, reinstall mien")
    return OnnxClassifier(path, name=name)


def load_network(path: Path, name: str | None = None) -> OnnxClassifier | TorchClassifier:
    """A network classifier (or ensemble): ONNX Runtime for .onnx, torch for .safetensors."""
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise ModelFileError(f"{path}: file not found; check the path")
        return OnnxClassifier(path, name=name)
    return TorchClassifier(path, name=name)


def load_classifier(spec: str | os.PathLike) -> Classifier:
    """A classifier from a bundled name, a run folder, a .safetensors or a .onnx file."""
    p = Path(spec)
    if p.is_dir() or p.suffix.lower() in (".onnx", ".safetensors"):
        kind, target = run_kind(p)
        return run_loader(kind, target)(target, name=p.name if p.is_dir() else None)
    if p.exists():
        raise ModelFileError(f"{p}: unknown model file type; give a .onnx or .safetensors file")
    return _load_bundled(str(spec))
