"""The run-folder and model-file format, at the bottom of the package: file names, the "mien"
record every saved model carries (docs/design.md, "Model metadata"), checksums, the bundled
weights folder, and which loader serves each kind of run.

Importing it imports neither torch nor safetensors; reading a record needs safetensors alone.
Weights and training state are stored as safetensors, nothing is pickled, and every file is
written whole or not at all (a temporary file renamed over it), so a run killed at any moment
leaves readable files.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import struct
from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from mien.errors import MienError, ModelFileError

FORMAT = 1
MODEL_FILE = "model.safetensors"  # best weights
LAST_FILE = "last.safetensors"  # weights after the last finished epoch, as a model file
# What --resume reads, in one file so that it is replaced in one step: the weights of LAST_FILE,
# the optimizer and the loop state (epoch, history, rng, best score).
STATE_FILE = "last.state.safetensors"
ONNX_FILE = "model.onnx"
HEAD_RECORD_FILE = "head.json"  # a head run's record (mien.heads.saved)
# BatchNorm statistics are stored with the weights but are not learned parameters.
_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")

# How each kind of run loads: "module:callable(path, name) -> Classifier", imported only when
# such a run is loaded, so analysing with a bundled model never imports training or heads.
# A new kind adds a line here (or calls `register_run_kind`); `load_classifier` stays as it is.
RUN_KINDS: dict[str, str] = {
    "classify": "mien.models.loading:load_network",
    "ensemble": "mien.models.loading:load_network",
    "anomaly": "mien.heads.anomaly:AnomalyDetector",
    "head": "mien.heads.saved:HeadClassifier",
}


def register_run_kind(kind: str, loader: str) -> None:
    """Make `load_classifier` load runs whose record names `kind` with `loader`
    ("module:callable", called with the run's folder or file and a name)."""
    RUN_KINDS[kind] = loader


def run_loader(kind: str, path: str | os.PathLike) -> Callable[..., Any]:
    """The loader of `kind`; a one-line ModelFileError naming `path` for a kind unknown here."""
    target = RUN_KINDS.get(kind)
    if target is None:
        raise ModelFileError(f"{path}: unknown run kind {kind!r} in its 'mien' record (known: "
                             f"{', '.join(sorted(RUN_KINDS))}); upgrade mien")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def run_kind(path: str | os.PathLike) -> tuple[str, Path]:
    """(kind, what its loader reads) of a run folder or model file. A head run is a folder with
    `head.json`; a folder's `model.onnx` serves it before its `model.safetensors`; ONNX files
    are networks (their loader reads their record); a safetensors record names its kind by
    `task` (an ensemble is a classifier with `members`)."""
    p = Path(path)
    if p.is_dir():
        if (p / HEAD_RECORD_FILE).is_file():
            return "head", p
        if (p / ONNX_FILE).is_file():
            return "classify", p / ONNX_FILE
        if not (p / MODEL_FILE).is_file():
            raise ModelFileError(f"{p}: run folder without model.onnx or model.safetensors; "
                                 "train it to the end or give a model file")
        p = p / MODEL_FILE
    if p.suffix.lower() != ".safetensors":
        return "classify", p
    record = read_record(p)
    kind = record.get("task", "classify")
    if kind == "classify" and record.get("members"):
        kind = "ensemble"
    return kind, p


def model_record(*, arch: str, labels, preprocess, in_channels: int, task: str = "classify",
                 model_kwargs: Mapping | None = None, **extra: Any) -> dict[str, Any]:
    """The dict every saved model carries (docs/design.md, "Model metadata")."""
    return {
        "format": FORMAT,
        "task": task,
        "arch": arch,
        "num_classes": len(labels),
        "in_channels": int(in_channels),
        "input_size": list(preprocess.input_size),
        "labels": list(labels),
        "preprocess": preprocess.to_dict(),
        "model_kwargs": dict(model_kwargs or {}),
        **extra,
    }


def _tensors(state: Mapping) -> dict:
    # safetensors refuses shared or strided storage: give each tensor its own contiguous copy.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_tensors(path: str | os.PathLike, tensors: Mapping, metadata: dict[str, str]) -> None:
    """Torch tensors and string metadata as a safetensors file, replaced whole."""
    from safetensors.torch import save_file

    tmp = Path(f"{path}.tmp")
    save_file(_tensors(tensors), str(tmp), metadata=metadata)
    os.replace(tmp, path)  # a crash mid-write never leaves a half checkpoint behind


def write_text(path: str | os.PathLike, text: str) -> None:
    """A text file (config, split, metrics) replaced whole, never left half written."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_weights(path: str | os.PathLike, state_dict: Mapping, record: Mapping) -> None:
    save_tensors(path, state_dict, {"mien": json.dumps(record)})


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """The "mien" record of a safetensors file, without loading its tensors (nor torch)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except FileNotFoundError as exc:
        raise ModelFileError(f"{path}: file not found; check the path") from exc
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise ModelFileError(f"{path}: not a readable safetensors file ({exc}); "
                             "re-export it") from exc
    return parse_record(meta.get("mien"), path)


def parse_record(raw: str | None, path,
                 required: tuple[str, ...] = ("arch", "labels", "preprocess", "num_classes")
                 ) -> dict[str, Any]:
    """The "mien" metadata JSON of a model file, checked for the keys its loader needs."""
    if not raw:
        raise ModelFileError(f"{path}: has no 'mien' metadata, so it is not a mien model; "
                             "train it with `mien train`")
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: its 'mien' metadata is not valid JSON; "
                             "re-export it") from exc
    missing = [k for k in required if k not in record]
    if missing:
        raise ModelFileError(f"{path}: 'mien' metadata lacks {', '.join(missing)}; re-export it")
    return record


def load_weights(path: str | os.PathLike) -> tuple[dict, dict[str, Any]]:
    """(state dict of torch tensors, record) of a safetensors checkpoint."""
    from safetensors.torch import load_file

    record = read_record(path)
    try:
        return load_file(str(path)), record
    except Exception as exc:
        raise ModelFileError(f"{path}: corrupt tensors ({exc}); re-train or re-export it") from exc


def parameter_count(path: str | os.PathLike) -> int:
    """Learned parameters in a safetensors file, read from its header alone (no torch)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
    except (OSError, struct.error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: not a readable safetensors file ({exc})") from exc
    return int(sum(np.prod(t["shape"], dtype=np.int64) for k, t in header.items()
                   if k != "__metadata__" and not k.endswith(_BUFFER_SUFFIXES)))


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_dir():
    """The folder of shipped weights and cards (`mien/models/weights`), as a resource."""
    return files("mien.models") / "weights"


def bundled_models() -> list[str]:
    """Names of the classifiers shipped with mien (those with a model card)."""
    folder = weights_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def transfer_source(spec: str) -> Path:
    """The safetensors file `--from` (or an embedding backbone) names: a run folder, a
    .safetensors file or a shipped model with torch weights."""
    p = Path(spec)
    if p.is_dir():
        p = p / MODEL_FILE
    if p.suffix == ".safetensors":
        if not p.is_file():
            raise MienError(f"{p}: not found; --from takes a run folder or a .safetensors file")
        return p
    shipped = weights_dir() / f"{spec}.safetensors"
    if shipped.is_file():
        return Path(str(shipped))
    raise MienError(f"--from {spec!r}: no run folder, .safetensors file or shipped model with "
                    "torch weights of that name")
