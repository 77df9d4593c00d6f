"""Head run folders on disk and `HeadClassifier`, the classifier `load_classifier` returns for
them: the network that embeds (referenced by path and SHA-256, verified at load) composed with
the fitted head.

A head is saved with skops (`head.skops`, a zip of JSON and numpy arrays; nothing is
unpickled). Loading accepts only scikit-learn types plus an explicit allow-list of the Cython
classes that fitted forests and neighbour trees hold, and refuses anything else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mien.errors import ModelFileError
from mien.runfiles import HEAD_RECORD_FILE, parse_record, sha256_of

HEAD_FILE = "head.skops"
RECORD_FILE = HEAD_RECORD_FILE
# Types outside skops' default trust that fitted heads legitimately contain.
TRUSTED_TYPES = frozenset({
    "sklearn.tree._tree.Tree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
})
TRUSTED_PREFIXES = ("sklearn.metrics._dist_metrics.",)  # k-NN distance objects


def save_head(run_dir: str | os.PathLike, head, record: Mapping[str, Any]) -> Path:
    """Write `head.skops` and `head.json` (the model record plus the head file's SHA-256)."""
    import skops.io as sio

    run_dir = Path(run_dir)
    tmp = run_dir / f"{HEAD_FILE}.tmp"
    sio.dump(head.estimator, tmp)
    os.replace(tmp, run_dir / HEAD_FILE)
    record = dict(record)
    record["head"] = {**record.get("head", {}), "name": head.name, "params": head.params,
                      "file": HEAD_FILE, "sha256": sha256_of(run_dir / HEAD_FILE)}
    (run_dir / RECORD_FILE).write_text(json.dumps(record, indent=1))
    return run_dir / RECORD_FILE


def load_estimator(path: str | os.PathLike):
    """The estimator in a skops file, refusing any type outside scikit-learn's trusted set."""
    import skops.io as sio

    path = Path(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises zip, JSON and its own errors on damaged files
        raise ModelFileError(f"{path}: not a readable skops file ({exc}); "
                             "retrain the head") from exc
    refused = [t for t in untrusted
               if t not in TRUSTED_TYPES and not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise ModelFileError(f"{path}: holds types mien does not load ({', '.join(refused)}); "
                             "it was not written by mien, retrain the head")
    try:
        return sio.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise ModelFileError(f"{path}: cannot load the head ({exc}); retrain it with this "
                             "scikit-learn version") from exc


def read_head_record(run_dir: str | os.PathLike) -> dict[str, Any]:
    file = Path(run_dir) / RECORD_FILE
    return parse_record(file.read_text(), file,
                        required=("labels", "preprocess", "head", "backbone"))


def _backbone_path(ref: Mapping[str, Any], run_dir: Path) -> Path:
    """The referenced network: beside the run as recorded relatively (folders moved together),
    else at its absolute path."""
    rel = ref.get("relpath")
    if rel and (run_dir / rel).is_file():
        return run_dir / rel
    return Path(ref["path"])


def embedder_from_reference(ref: Mapping[str, Any], run_dir: Path, device: str = "cpu"):
    kind = ref.get("kind")
    if kind == "cnn":
        from mien.heads.embeddings import CnnEmbedder

        return CnnEmbedder(_backbone_path(ref, run_dir), ref["layer"], sha256=ref["sha256"],
                           device=device)
    if kind == "dlib-resnet":
        from mien.heads.dlib_backbone import DlibEmbedder

        embedder = DlibEmbedder()
        if embedder.sha256 != ref.get("sha256"):
            raise ModelFileError(f"{embedder.path}: SHA-256 differs from the dlib weights the head "
                                 "was trained on; reinstall that face-recognition-models version "
                                 "or retrain the head")
        return embedder
    raise ModelFileError(f"{run_dir / RECORD_FILE}: unknown backbone kind {kind!r}; "
                         "upgrade mien or retrain the head")


class HeadClassifier:
    """`Classifier` (docs/design.md) of a head run: embed with the backbone, score with the
    head. Embedding layers carry no softmax, so `preprocess` is the backbone's own."""

    def __init__(self, run_dir: str | os.PathLike, name: str | None = None, device: str = "cpu"):
        from mien.data.preprocess import Framing, Preprocess
        from mien.heads.registry import head_info

        run_dir = Path(run_dir)
        self.path = run_dir
        self.record = read_head_record(run_dir)
        self.name = name or run_dir.name
        self.labels: tuple[str, ...] = tuple(self.record["labels"])
        head = self.record["head"]
        head_file = run_dir / head.get("file", HEAD_FILE)
        if not head_file.is_file():
            raise ModelFileError(f"{head_file}: missing from the head run; retrain the head")
        if head.get("sha256") != sha256_of(head_file):
            raise ModelFileError(f"{head_file}: SHA-256 differs from {RECORD_FILE}; the file is "
                                 "damaged or replaced, retrain the head")
        self.embedder = embedder_from_reference(self.record["backbone"], run_dir, device)
        self.preprocess = Preprocess.from_dict(self.record["preprocess"])
        self.input_size: tuple[int, int] = self.preprocess.input_size
        self.framing = Framing.from_dict(self.record.get("framing"))

        from mien.heads.classical import Head

        self.head = Head(head_info(head["name"]), load_estimator(head_file), head.get("params", {}),
                         num_classes=len(self.labels))

    def __repr__(self) -> str:
        return f"HeadClassifier({self.name!r}, head={self.head.name!r}, labels={list(self.labels)})"

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if len(images) == 0:
            return np.empty((0, len(self.labels)), np.float32)
        return self.head.predict_proba(self.embedder.embed(images))

