"""Calibrate a saved classifier (`mien calibrate`): fit its temperature on labelled images and
write a copy of its file whose record holds `temperature` and `calibration`.

The record is the one JSON dict every model file carries (docs/design.md): safetensors metadata
"mien" or ONNX metadata_props "mien". Only that dict changes; the weights are copied as they are.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mien.data.datasets import ImageDataset
from mien.errors import DatasetError, ImageReadError, MienError, require
from mien.evaluation.calibration import Calibration, calibrate

MODEL_SUFFIXES = (".onnx", ".safetensors")
CHUNK = 1024  # images decoded at a time


def classifier_outputs(classifier, dataset: ImageDataset) -> tuple[np.ndarray, np.ndarray]:
    """(raw outputs (V, N, K), labels (N,)) of `classifier` over `dataset`, whose labels index
    the classifier's; unreadable images are left out."""
    mode = classifier.preprocess.color
    outputs, labels = [], []
    for lo in range(0, len(dataset), CHUNK):
        images, rows = [], []
        for i in range(lo, min(lo + CHUNK, len(dataset))):
            try:
                images.append(dataset.load(i, mode))
                rows.append(i)
            except ImageReadError:
                continue
        if images:
            outputs.append(classifier.outputs(images))
            labels.append(dataset.labels[rows])
    if not outputs:
        raise DatasetError(f"{dataset.name}: none of its {len(dataset)} images could be read")
    return np.concatenate(outputs, axis=1), np.concatenate(labels)


def calibrate_classifier(classifier, dataset: ImageDataset) -> Calibration:
    """The temperature of a loaded network classifier fitted on `dataset` (labels already in
    the classifier's order), with its ECE before and after."""
    outputs, y = classifier_outputs(classifier, dataset)
    return calibrate(outputs, y, classifier.activation, classifier.temperature)


def write_record(src: str | os.PathLike, dst: str | os.PathLike, record: Mapping) -> Path:
    """Copy the model file `src` to `dst` with `record` as its "mien" metadata."""
    from mien.models.export import METADATA_KEY
    from mien.training import checkpoint as ckpt

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix.lower() == ".onnx":
        onnx = require("onnx", "train")
        tmp = dst.with_name(f".{dst.name}.tmp")
        proto = onnx.load(str(src))
        for entry in list(proto.metadata_props):
            if entry.key == METADATA_KEY:
                proto.metadata_props.remove(entry)
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(dict(record), sort_keys=True)
        onnx.save(proto, str(tmp))
        os.replace(tmp, dst)
    else:
        state, _ = ckpt.load_weights(src)
        ckpt.save_weights(dst, state, record)
    return dst


def _source(spec: str, suffix: str):
    """(classifier, its file) for MODEL: a run folder gives its model file of `suffix`."""
    from mien.models.loading import load_classifier

    p = Path(spec)
    if p.is_dir() and (p / f"model{suffix}").is_file():
        classifier = load_classifier(p / f"model{suffix}")
    else:
        classifier = load_classifier(spec)
    if not hasattr(classifier, "outputs"):
        raise MienError(f"{spec}: a head run or anomaly detector; `mien calibrate` calibrates "
                        "networks (run folders, .onnx, .safetensors, bundled names)")
    src = Path(classifier.path)
    if src.suffix.lower() != suffix:
        raise MienError(f"{spec}: its model file is {src.name}; give --out a name ending in "
                        f"{src.suffix}")
    return classifier, src


def calibration_data(path: str | os.PathLike, split: str | None = None,
                     attribute: str | None = None) -> tuple[ImageDataset, str]:
    """(images, description) to fit on: `split` of the dataset at `path`, by default its val
    split, else its only one; the test split stays for reporting."""
    from mien.data.datasets import open_dataset

    splits = open_dataset(path, attribute=attribute)
    name = split or next((s for s in ("val", "all") if s in splits), None)
    if name not in splits:
        raise DatasetError(f"{path}: no split {name or 'val'!r}; it has {', '.join(splits)} "
                           "(choose with --split)")
    return splits[name], f"{path} [{name}]"


def default_data(spec: str) -> tuple[ImageDataset, str]:
    """The images a model's own validation figures are measured on: a run folder's validation
    split (split.json replayed), or a bundled model's card validation data."""
    p = Path(spec)
    if p.is_dir() and (p / "config.yaml").is_file():
        from mien.training.data import run_splits

        return run_splits(p)[1], f"validation split of {p}"
    from mien.models.cards import read_card, validation_dataset
    from mien.models.loading import bundled_models

    if spec in bundled_models():
        card = read_card(spec)
        return validation_dataset(card), card["data"].get("validation", "card validation data")
    raise MienError(f"{spec}: no run folder or bundled model to take validation images from; "
                    "give DATA")


def calibrate_model(spec: str, out: str | os.PathLike, dataset: ImageDataset | None = None, *,
                    data_name: str | None = None, label_spec=None) -> tuple[Calibration, Path]:
    """Fit the temperature of MODEL (bundled name, run folder, .onnx or .safetensors) on
    `dataset` (default: `default_data`) and write its model file with it to `out` (.onnx or
    .safetensors, the kind the model is)."""
    from mien.evaluation.evaluate import map_to_model_labels

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise MienError(f"--out {out}: name a .onnx or .safetensors file")
    classifier, src = _source(spec, suffix)
    if dataset is None:
        dataset, default_name = default_data(spec)
        data_name = data_name or default_name
    dataset = map_to_model_labels(dataset, classifier.labels, label_spec)
    result = calibrate_classifier(classifier, dataset)
    record = {**classifier.record, "temperature": result.temperature,
              "calibration": {**result.to_dict(), "data": data_name or dataset.name}}
    return result, write_record(src, out, record)
