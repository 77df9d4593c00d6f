"""The torch module a saved record describes (`build_model`), and one network out of an
ensemble's file (`best_member`): how the zoo turns a model file back into a network."""

from __future__ import annotations

import os
from collections.abc import Mapping

from mien.errors import ModelFileError


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
