"""Embeddings of a dataset from a trained network, cached on disk.

An embedder maps uint8 images to (N, D) float32 vectors and has a `key` naming exactly that
function (weights SHA-256 + layer). Cache entries are `.npz` files (no pickles) named by that
key and a fingerprint of the dataset's file list, labels, sizes and modification times, so a
grid search, a second head or a re-run reuses them and an edited dataset does not.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mien.data.datasets import ImageDataset
from mien.data.preprocess import Preprocess
from mien.errors import ModelFileError

BATCH = 256


class Embedder(Protocol):
    key: str  # file-name-safe identity of the embedding function
    preprocess: Preprocess  # how images are decoded and resized before `embed`

    def embed(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray: ...

    def reference(self) -> dict[str, Any]: ...  # what a saved head records to rebuild it


def resolve_cnn(spec: str | os.PathLike) -> Path:
    """The safetensors file of a run folder, a checkpoint path or a shipped model name."""
    from mien.runfiles import transfer_source

    return transfer_source(str(spec))


class CnnEmbedder:
    """Activations of one embedding layer of a zoo model checkpoint (see `ZooModel.embed`)."""

    def __init__(self, path: str | os.PathLike, layer: str = "pre_logits", *,
                 sha256: str | None = None, device: str = "cpu"):
        from mien.models.build import best_member, build_model
        from mien.runfiles import load_weights, sha256_of

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: the network this head was trained on is missing; "
                                 "restore it or retrain the head")
        self.sha256 = sha256_of(self.path)
        if sha256 is not None and sha256 != self.sha256:
            raise ModelFileError(f"{self.path}: SHA-256 differs from the one the head was trained "
                                 "on (the network was retrained or replaced); retrain the head")
        state, self.record = load_weights(self.path)
        member = ""
        if self.record.get("members"):  # an ensemble: the embedding of its best member
            state, self.record, k = best_member(state, self.record)
            member = f"-m{k}"
        self.model = build_model(self.record, state, path=self.path).eval().to(device)
        if layer not in self.model.embedding_layers:
            raise ModelFileError(f"{self.path}: {self.record['arch']} has no embedding layer "
                                 f"{layer!r}; choose one of "
                                 f"{', '.join(self.model.embedding_layers)}")
        self.layer = layer
        self.device = device
        self.preprocess = Preprocess.from_dict(self.record["preprocess"])
        self.key = f"{self.sha256[:16]}{member}-{layer}"

    def embed(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        import torch

        out = [np.empty((0, 0), np.float32)]
        with torch.no_grad():
            for s in range(0, len(images), BATCH):
                x = torch.from_numpy(self.preprocess(images[s:s + BATCH])).to(self.device)
                out.append(self.model.embed(x, self.layer).float().cpu().numpy())
        return np.concatenate(out[1:]) if len(out) > 1 else out[0]

    def reference(self) -> dict[str, Any]:
        return {"kind": "cnn", "path": str(self.path.resolve()), "sha256": self.sha256,
                "layer": self.layer, "arch": self.record["arch"]}


def fingerprint(ds: ImageDataset) -> str:
    """SHA-256 over the sources, labels, classes and each file's size and mtime."""
    h = hashlib.sha256()
    h.update(json.dumps([list(ds.classes), ds.sources, ds.labels.tolist()]).encode())
    for f in sorted({s.split(":row ")[0] for s in ds.sources}):
        try:
            st = os.stat(f)
            h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"{f}|missing".encode())
    return h.hexdigest()


def default_cache_dir() -> Path:
    root = os.environ.get("MIEN_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return (Path(root) if root else Path.home() / ".cache") / "mien" / "embeddings"


@dataclass(frozen=True)
class Embeddings:
    x: np.ndarray  # float32 (N, D)
    y: np.ndarray  # int64 (N,)
    skipped: tuple[str, ...]  # unreadable images left out
    seconds: float  # decoding + embedding time (0 on a cache hit, which only reads the file)
    cached: bool  # read from the cache


def embed_dataset(embedder: Embedder, ds: ImageDataset, *, mirror: bool = False,
                  cache_dir: str | os.PathLike | None = None, strict: bool = False,
                  workers: int = 0, echo: Callable[[str], None] = print) -> Embeddings:
    """Embeddings of `ds` (plus its mirrored images after them when `mirror`), from the cache
    when an entry exists; `cache_dir=None` uses `default_cache_dir()`, "" disables caching."""
    folder = Path(cache_dir) if cache_dir else default_cache_dir() if cache_dir is None else None
    stem = f"{embedder.key}-{fingerprint(ds)[:20]}"
    names = ["plain"] + (["mirror"] if mirror else [])
    parts, decoded = [], None
    t0 = time.perf_counter()
    hits = 0
    for name in names:
        file = folder / f"{stem}-{name}.npz" if folder else None
        part = _read(file) if file else None
        if part is not None:
            hits += 1
        else:
            if decoded is None:
                from mien.training.data import decode

                echo(f"embedding {len(ds)} images of {ds.name or 'the dataset'} ...")
                decoded = decode(ds, embedder.preprocess, strict=strict, workers=workers)
            images, y, skipped = decoded
            if name == "mirror":
                images = np.ascontiguousarray(images[:, :, ::-1])
            part = (embedder.embed(images).astype(np.float32), y, tuple(skipped))
            if file:
                _write(file, *part)
        parts.append(part)
    return Embeddings(
        x=np.concatenate([p[0] for p in parts]), y=np.concatenate([p[1] for p in parts]),
        skipped=parts[0][2], seconds=0.0 if hits == len(names) else time.perf_counter() - t0,
        cached=hits == len(names))


def _read(file: Path):
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            return z["x"], z["y"], tuple(str(s) for s in z["skipped"])
    except (OSError, ValueError, KeyError):
        return None  # a damaged entry is recomputed and overwritten


def _write(file: Path, x: np.ndarray, y: np.ndarray, skipped: tuple[str, ...]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, x=x, y=y, skipped=np.array(skipped, dtype=str))
    os.replace(tmp, file)  # readers never see half an entry
