"""Weights and training state as safetensors, with the model record of docs/design.md under the
metadata key "mien". Nothing is pickled: optimizer tensors go in their own safetensors file and
everything else in its JSON metadata. Every file is written whole or not at all (a temporary
file renamed over it), so a run killed at any moment leaves readable files."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mien.errors import ModelFileError

FORMAT = 1
MODEL_FILE = "model.safetensors"  # best weights
LAST_FILE = "last.safetensors"  # weights after the last finished epoch, as a model file
# What --resume reads, in one file so that it is replaced in one step: the weights of LAST_FILE,
# the optimizer and the loop state (epoch, history, rng, best score).
STATE_FILE = "last.state.safetensors"
ONNX_FILE = "model.onnx"


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


def _save(path: str | os.PathLike, tensors: Mapping, metadata: dict[str, str]) -> None:
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
    _save(path, state_dict, {"mien": json.dumps(record)})


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """The "mien" record of a safetensors file, without loading its tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
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
    """(state dict, record) of a safetensors checkpoint."""
    from safetensors.torch import load_file

    record = read_record(path)
    try:
        return load_file(str(path)), record
    except Exception as exc:
        raise ModelFileError(f"{path}: corrupt tensors ({exc}); re-train or re-export it") from exc


def best_member(state: Mapping, record: Mapping) -> tuple[dict, dict, int]:
    """(state, record, index) of an ensemble's member with the best recorded validation
    accuracy (the first when none is recorded), as a checkpoint of one network."""
    members = record["members"]
    scores = [m.get("best_val_accuracy") or 0.0 for m in members]
    k = max(range(len(members)), key=lambda i: scores[i])
    prefix = f"members.{k}."
    one = {key[len(prefix):]: v for key, v in state.items() if key.startswith(prefix)}
    rec = {key: v for key, v in record.items() if key not in ("members", "calibration")}
    rec.update(arch=members[k]["arch"], model_kwargs=members[k].get("model_kwargs", {}),
               epoch=members[k].get("epoch"), temperature=members[k].get("temperature", 1.0))
    return one, rec, k


def build_model(record: Mapping, state: Mapping | None = None, *, path: str | os.PathLike = "?"):
    """The torch module a record describes, with `state` loaded when given."""
    from mien.models import create_model

    def one(arch: str, kwargs: Mapping):
        try:
            return create_model(arch, int(record["num_classes"]),
                                in_channels=int(record.get("in_channels", 1)),
                                input_size=tuple(record["input_size"]), **kwargs)
        except KeyError as exc:
            raise ModelFileError(f"{path}: architecture {arch!r} is unknown to this mien "
                                 f"version ({exc}); upgrade mien") from exc

    if record.get("members"):  # an ensemble of finished runs (mien.training.ensemble)
        from mien.models.ensemble import Ensemble

        model = Ensemble([one(m["arch"], m.get("model_kwargs", {})) for m in record["members"]],
                         [m.get("temperature", 1.0) for m in record["members"]])
    else:
        model = one(record["arch"], record.get("model_kwargs", {}))
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ModelFileError(f"{path}: weights do not fit {record['arch']!r} "
                                 f"({first})") from exc
    return model


@dataclass(frozen=True, slots=True)
class TrainState:
    """What --resume reads back from a STATE_FILE."""

    loop: dict[str, Any]  # epoch, history, best score ...
    modules: dict[str, dict]  # state dict per saved module ("model", "aux"); empty in old files


def save_train_state(path: str | os.PathLike, optimizer, loop: Mapping,
                     modules: Mapping[str, Mapping] | None = None) -> None:
    """Module weights and optimizer tensors as safetensors; param groups and loop state (epoch,
    history, rng states, best score) as JSON metadata."""
    import torch

    opt = optimizer.state_dict()
    tensors = {f"module.{name}.{key}": value for name, state in (modules or {}).items()
               for key, value in state.items()}
    scalars = {}
    for pid, st in opt["state"].items():
        for name, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{name}"] = value
            else:
                scalars[f"{pid}.{name}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"param_groups": opt["param_groups"], "scalars": scalars, "loop": dict(loop)}
    _save(path, tensors, {"mien_state": json.dumps(meta)})


def load_train_state(path: str | os.PathLike, optimizer) -> TrainState:
    """Restore `optimizer` from `path`; returns the loop state and module weights saved with
    it."""
    import torch
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["mien_state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError as exc:
        raise ModelFileError(f"{path}: no training state to resume from; start a new run") from exc
    except Exception as exc:
        raise ModelFileError(f"{path}: unreadable training state ({exc}); start the run "
                             "again with another --out") from exc
    state: dict[int, dict] = {}
    modules: dict[str, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
        elif key.startswith("module."):
            _, module, name = key.split(".", 2)
            modules.setdefault(module, {})[name] = value
    for key, value in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    return TrainState(meta["loop"], modules)


def export_onnx(model, record: Mapping, path: str | os.PathLike) -> None:
    """ONNX through the zoo's exporter: dynamic batch, the record under metadata key "mien"."""
    from mien.models.export import export_onnx as zoo_export

    tmp = Path(f"{path}.tmp.onnx")
    zoo_export(model.cpu(), tmp, tuple(record["input_size"]), int(record["in_channels"]),
               dict(record))
    os.replace(tmp, path)
