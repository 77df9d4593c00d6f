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
from mien.models.build import best_member, build_model  # noqa: F401  (callers import them here)

# The file format lives low in the tree (mien.runfiles); training uses it through these names.
from mien.runfiles import (  # noqa: F401
    FORMAT,
    LAST_FILE,
    MODEL_FILE,
    ONNX_FILE,
    STATE_FILE,
    load_weights,
    model_record,
    parse_record,
    read_record,
    save_tensors,
    save_weights,
    write_text,
)


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
    save_tensors(path, tensors, {"mien_state": json.dumps(meta)})


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
