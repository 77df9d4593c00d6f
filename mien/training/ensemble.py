"""`combine_runs`: finished training runs -> one ensemble run folder (`mien ensemble`).

The ensemble (mien.models.ensemble) averages its members' class probabilities, each member at
its own temperature, and gets a temperature of its own fitted on the validation images. Its
folder looks like a training run's (model.safetensors, model.onnx, config.yaml, metrics.json,
confusion.png, split.json), so it evaluates, analyzes, serves, compares and ships like one. Its
validation figures are measured here on the members' validation images, which must be the same
for all.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mien.data.preprocess import Framing
from mien.errors import ModelFileError
from mien.training import checkpoint as ckpt
from mien.training.config import ConfigError

# What members must share: they read the same faces the same way and answer the same classes.
# (key, the value a record without it means)
SHARED = (("task", "classify"), ("labels", None), ("in_channels", None), ("input_size", None),
          ("preprocess", None), ("tta", "none"), ("activation", "softmax"),
          ("framing", Framing().to_dict()))


@dataclass(frozen=True, slots=True)
class EnsembleResult:
    run_dir: Path
    members: tuple[Path, ...]
    member_accuracies: tuple[float, ...]  # each member's best validation accuracy in training
    val_accuracy: float  # the ensemble's, on the same images
    val_balanced_accuracy: float
    last_val_accuracy: float | None  # the ensemble of the members' last-epoch weights


def _member(run: Path, weights: str) -> tuple[dict, dict, Path]:
    src = run / (ckpt.MODEL_FILE if weights == "best" else ckpt.LAST_FILE)
    if not run.is_dir():
        raise ModelFileError(f"{run}: not a run folder; give folders written by `mien train`")
    if not src.is_file():
        raise ModelFileError(f"{src}: missing; give finished `mien train` run folders")
    state, record = ckpt.load_weights(src)
    if record.get("members"):
        raise ModelFileError(f"{run}: is an ensemble already; give its member runs instead")
    if record.get("task", "classify") != "classify":
        raise ModelFileError(f"{run}: a {record['task']} model; ensembles combine classifiers")
    if record.get("activation", "softmax") != "softmax":
        raise ModelFileError(f"{run}: its outputs are {record['activation']} scores; ensembles "
                             "average softmax classifiers (trained with cross_entropy)")
    return state, record, src


def _check_shared(records: Sequence[dict], runs: Sequence[Path], tta: str | None) -> None:
    for run, rec in zip(runs[1:], records[1:], strict=True):
        for key, default in SHARED:
            if key == "tta" and tta is not None:  # the ensemble's own choice overrides theirs
                continue
            mine, first = rec.get(key, default), records[0].get(key, default)
            if mine != first:
                raise ConfigError(f"{run}: {key} is {mine}, but {first} in {runs[0]}; an "
                                  "ensemble's members must read faces the same way")


def _write_model(records, states, sources, path: Path, name: str, tta: str | None,
                 accuracies: Sequence[float | None] | None = None) -> tuple[dict, dict]:
    """Save the ensemble's safetensors (members' tensors under members.I.); (record, state).
    `accuracies`: each member's best validation accuracy, recorded so that `--from` and
    embedding heads can start from the best member."""
    accuracies = accuracies or [None] * len(records)
    members = [{"arch": r["arch"], "model_kwargs": r.get("model_kwargs", {}),
                "weights_from": str(src), "epoch": r.get("epoch"), "best_val_accuracy": acc,
                "temperature": r.get("temperature", 1.0)}
               for r, src, acc in zip(records, sources, accuracies, strict=True)]
    base = records[0]
    extra = {k: base[k] for k in ("activation", "loss", "trained_on", "tta", "framing")
             if k in base}
    if tta is not None:
        extra["tta"] = tta
    from mien.data.preprocess import Preprocess

    record = ckpt.model_record(arch="ensemble", labels=base["labels"],
                               preprocess=Preprocess.from_dict(base["preprocess"]),
                               in_channels=base["in_channels"], members=members, run=name,
                               **extra)
    state = {f"members.{i}.{k}": v for i, s in enumerate(states) for k, v in s.items()}
    ckpt.save_weights(path, state, record)
    return record, state


def _validation_set(runs: Sequence[Path]):
    """The validation images of the members, which must be one and the same set."""
    from mien.training.config import TrainConfig, load_config
    from mien.training.data import load_splits, read_split_record

    first = None
    for run in runs:
        cfg = TrainConfig.from_dict(load_config(run / "config.yaml"), source=str(run))
        _, val, _ = load_splits(cfg, read_split_record(run))
        # A set: links of another name, or another order, to the same files are the same set.
        key = sorted(zip((str(Path(s).resolve()) for s in val.sources), val.labels.tolist(),
                         strict=True))
        if first is None:
            first, ds, config = key, val, cfg
        elif key != first:
            raise ConfigError(f"{run}: validated on other images than {runs[0]}; ensemble runs "
                              "trained with the same data, val and split_seed")
    return ds, config


def combine_runs(runs: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                 weights: str = "best", tta: str | None = None,
                 echo: Callable[[str], None] = print) -> EnsembleResult:
    """Write the ensemble of `runs` (their best, or `last`, weights) to the new folder `out`.
    `tta` ("none" or "flip") replaces the members' test-time augmentation: an ensemble gains
    less from flipping, and every flipped view costs one more pass of every member."""
    from mien.evaluation.evaluate import evaluate
    from mien.models.loading import TTA_MODES, OnnxClassifier, TorchClassifier
    from mien.training.calibrate import calibrate_classifier, write_record

    runs = [Path(r) for r in runs]
    out = Path(out)
    if weights not in ("best", "last"):
        raise ConfigError(f"--weights {weights!r}: choose best or last")
    if tta is not None and tta not in TTA_MODES:
        raise ConfigError(f"--tta {tta!r}: choose one of {', '.join(TTA_MODES)}")
    if len(runs) < 2:
        raise ConfigError("an ensemble needs at least two runs")
    if len({r.resolve() for r in runs}) < len(runs):
        raise ConfigError("the same run is given twice; give different runs")
    if out.exists():
        raise ConfigError(f"{out}: exists already; choose a new folder")
    loaded = [_member(r, weights) for r in runs]
    states, records, sources = (list(x) for x in zip(*loaded, strict=True))
    _check_shared(records, runs, tta)
    val, config = _validation_set(runs)
    metrics = []
    for r in runs:
        try:
            metrics.append(json.loads((r / "metrics.json").read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{r / 'metrics.json'}: unreadable ({exc}); give finished "
                                 "`mien train` run folders") from exc

    # Built in a hidden folder and renamed at the end: a failure leaves no half ensemble.
    work = out.parent / f".{out.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        record, state = _write_model(
            records, states, sources, work / ckpt.MODEL_FILE, out.name, tta,
            [mt["best_val_accuracy"] if weights == "best" else None for mt in metrics])
        ckpt.export_onnx(ckpt.build_model(record, state, path=out).eval(), record,
                         work / ckpt.ONNX_FILE)
        echo(f"calibrating and scoring the ensemble of {len(runs)} runs on {len(val)} "
             "validation images ...")
        calibration = calibrate_classifier(OnnxClassifier(work / ckpt.ONNX_FILE), val)
        record = {**record, "temperature": calibration.temperature,
                  "calibration": {**calibration.to_dict(), "data": "validation split"}}
        ckpt.save_weights(work / ckpt.MODEL_FILE, state, record)
        write_record(work / ckpt.ONNX_FILE, work / ckpt.ONNX_FILE, record)
        result = evaluate(OnnxClassifier(work / ckpt.ONNX_FILE), val, batch_size=256)
        last_acc = None
        if weights == "best" and all((r / ckpt.LAST_FILE).is_file() for r in runs):
            last = [_member(r, "last") for r in runs]
            _write_model([x[1] for x in last], [x[0] for x in last], [x[2] for x in last],
                         work / ckpt.LAST_FILE, out.name, tta)
            last_acc = evaluate(TorchClassifier(work / ckpt.LAST_FILE), val,
                                batch_size=256).metrics.accuracy
        _write_reports(work, runs, weights, record, config, metrics, result.metrics, last_acc,
                       calibration)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    m = result.metrics
    return EnsembleResult(out, tuple(runs), tuple(mt["best_val_accuracy"] for mt in metrics),
                          m.accuracy, m.balanced_accuracy, last_acc)


def _write_reports(out: Path, runs, weights, record, config, metrics, m, last_acc,
                   calibration) -> None:
    """confusion.png, split.json, config.yaml and metrics.json, as a training run has them."""
    import yaml

    from mien.training.plots import plot_confusion

    cm = m.confusion_matrix
    plot_confusion(cm, tuple(record["labels"]), out / "confusion.png",
                   title=f"validation, ensemble of {len(runs)}")
    split = runs[0] / "split.json"
    if split.is_file():
        shutil.copyfile(split, out / "split.json")
    (out / "config.yaml").write_text(yaml.safe_dump(
        {"ensemble_of": [str(r) for r in runs], "weights": weights,
         "data": str(config.data), "val": config.val, "attribute": config.attribute,
         "members": [yaml.safe_load((r / "config.yaml").read_text()) for r in runs]},
        sort_keys=False))
    summary = {
        "model": "ensemble", "classes": list(record["labels"]),
        "members": [{"run": str(r), "model": mt.get("model"),
                     "best_val_accuracy": mt["best_val_accuracy"],
                     **{k: mt.get(k) for k in ("best_epoch", "epochs_run", "stopped",
                                               "train_seconds")}}
                    for r, mt in zip(runs, metrics, strict=True)],
        "best_val_accuracy": m.accuracy, "best_val_balanced_accuracy": m.balanced_accuracy,
        "final_val_accuracy": last_acc,  # the ensemble of the members' last epochs
        "best_epoch": [x["epoch"] for x in record["members"]],  # epochs of the weights used
        "epochs_run": [mt["epochs_run"] for mt in metrics],
        "stopped": ", ".join(sorted({mt["stopped"] for mt in metrics})),
        "train_seconds": round(sum(mt["train_seconds"] for mt in metrics), 3),
        "images_per_second": None,
        "num_train": metrics[0]["num_train"], "num_val": m.n,
        "hardware": metrics[0].get("hardware", {}), "confusion": cm.tolist(),
        "calibration": calibration.to_dict(),
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
