"""Model cards of the classifiers shipped with mien (`mien/models/weights/<name>.json`).

A card says what a bundled model is, what it was trained on and how, and how well it did on
its validation data; `load_classifier` checks the `.onnx` against the card's `sha256` before
running it. `build_card` makes a card from a finished run folder and an evaluation record;
`installed_models` / `card_text` back `mien models list` / `mien models show`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mien import runfiles
from mien.data.preprocess import Framing
from mien.errors import ModelFileError
from mien.runfiles import parameter_count, parse_record, sha256_of

CARD_FORMAT = 1
# Keys every card has; `mien models show` prints them in this order.
REQUIRED = ("name", "file", "sha256", "labels", "arch", "input", "data", "split", "command",
            "training", "validation", "intended_use", "known_weaknesses")


# The face-crop framing of CelebA's aligned images used to train the bundled `glasses` model
# (tools/celeba_face_crops.py measured it): `mien analyze` crops 1.2 x the detector's box, whose
# centre lies at (0.506 w, 0.569 h) of these images with a crop side of 0.755 w.
CELEBA_CROP_CENTRE = (0.506, 0.569)
CELEBA_CROP_SIDE = 0.755
CELEBA_CROP_QUALITY = 95


def celeba_face_crop_jpeg(image, size: int = 64) -> bytes:
    """One CelebA aligned RGB image -> its face crop, size x size, as JPEG bytes (the training
    data of `glasses` is these bytes on disk)."""
    import cv2

    h, w = image.shape[:2]
    side = round(CELEBA_CROP_SIDE * w)
    x0 = max(0, min(round(CELEBA_CROP_CENTRE[0] * w - side / 2), w - side))
    y0 = max(0, min(round(CELEBA_CROP_CENTRE[1] * h - side / 2), h - side))
    crop = cv2.resize(image[y0:y0 + side, x0:x0 + side], (size, size),
                      interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, CELEBA_CROP_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def weights_dir() -> Path:
    return Path(str(runfiles.weights_dir()))


@dataclass(frozen=True, slots=True)
class InstalledModel:
    name: str
    file: Path
    size_bytes: int  # 0 when the .onnx is missing
    verified: bool  # the file's SHA-256 equals the card's
    card: Mapping[str, Any]


def read_card(name: str, folder: str | os.PathLike | None = None) -> dict[str, Any]:
    """The card of bundled model `name`; ModelFileError naming the file when absent or broken."""
    folder = Path(folder) if folder is not None else weights_dir()
    path = folder / f"{name}.json"
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in folder.glob("*.json"))) or "none"
        raise ModelFileError(f"{path}: no model card for {name!r} (bundled: {have}); "
                             "see `mien models list`")
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: model card is not valid JSON ({exc}); reinstall mien") \
            from exc
    missing = [k for k in REQUIRED if k not in card]
    if not isinstance(card, dict) or missing:
        raise ModelFileError(f"{path}: model card lacks {', '.join(missing) or 'its fields'}; "
                             "reinstall mien")
    return card


def installed_models(folder: str | os.PathLike | None = None) -> list[InstalledModel]:
    """Every carded model in `folder` (default: the bundled weights), checksums verified."""
    folder = Path(folder) if folder is not None else weights_dir()
    out = []
    for card_path in sorted(folder.glob("*.json")):
        card = read_card(card_path.stem, folder)
        onnx = folder / card.get("file", f"{card_path.stem}.onnx")
        present = onnx.is_file()
        out.append(InstalledModel(
            name=card_path.stem, file=onnx, size_bytes=onnx.stat().st_size if present else 0,
            verified=present and sha256_of(onnx) == card["sha256"], card=card))
    return out


def headline(card: Mapping[str, Any]) -> str:
    """'accuracy 0.6512 (balanced 0.6203) on 3589 fer2013/val images' for tables."""
    v = card["validation"]
    return (f"accuracy {v['accuracy']:.4f} (balanced {v['balanced_accuracy']:.4f}) on "
            f"{v['n']} {card['data'].get('validation_name', 'validation')} images")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _extras(card: Mapping[str, Any]) -> str:
    """Input blur and test-time augmentation, when the model uses them."""
    out = []
    if card.get("preprocess", {}).get("blur_sigma"):
        out.append(f"blurred with sigma {card['preprocess']['blur_sigma']}")
    if card["input"].get("tta", "none") != "none":
        out.append(f"{card['input']['tta']} test-time augmentation")
    return f" ({', '.join(out)})" if out else ""


def arch_text(record: Mapping[str, Any]) -> str:
    """'mien-net-m', or 'ensemble of 3 mien-net-m' for an ensemble (mien.models.ensemble)."""
    members = record.get("members")
    if not members:
        return record["arch"]
    return f"ensemble of {len(members)} {' / '.join(sorted({m['arch'] for m in members}))}"


def _each(x) -> str:
    """An ensemble's per-member numbers joined by ' + ', a single run's as they are."""
    return " + ".join(str(v) for v in x) if isinstance(x, list) else str(x)


def framing_text(framing: Mapping[str, Any] | None) -> str:
    """How `mien analyze` cuts faces for a model, in words (cards written before framing was
    recorded: the default every model had then)."""
    f = Framing.from_dict(framing)
    return (f"square of the detector box's side x {1 + f.margin:.2f}, "
            + ("eyes levelled" if f.align else "not rotated"))


def card_text(card: Mapping[str, Any]) -> str:
    """The card as readable plain text (no markup) for `mien models show`."""
    v, t, d, s = card["validation"], card["training"], card["data"], card["split"]
    size = card["input"]["size"]
    lines = [
        f"{card['name']}: {card.get('summary', '')}".rstrip(": "),
        "",
        f"file          {card['file']} ({card.get('size_bytes', 0) / 1024:.0f} KiB, "
        f"sha256 {card['sha256']})",
        f"labels        {', '.join(card['labels'])}",
        f"network       {card['arch']} ({card.get('parameters', '?')} parameters), input "
        f"{size[0]}x{size[1]} {card['input']['color']}" + _extras(card),
        f"trained on    {d['train']}",
        f"validated on  {d['validation']}",
        f"face crop     {framing_text(card.get('framing'))}",
        f"split         {s['kind']}" + (f" (split record sha256 {s['record_sha256']})"
                                         if s.get("record_sha256") else ""),
        f"data licence  {d['licence']}",
        f"command       {card['command']}",
        f"training      {t['seconds'] / 60:.1f} min on {t['hardware']}, {_each(t['epochs_run'])} "
        f"epochs (weights of epoch {_each(t.get('weights_epoch', t['best_epoch']))}, stopped: "
        f"{t['stopped']})",
        "",
        f"validation    {headline(card)}, macro-F1 {v['macro_f1']:.4f}",
        "",
    ]
    width = max(len(x) for x in [*v["labels"], "class"])
    lines.append(f"  {'class':<{width}} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>8}")
    for label in v["labels"]:
        c = v["per_class"][label]
        lines.append(f"  {label:<{width}} {_fmt(c['precision']):>9} {_fmt(c['recall']):>7} "
                     f"{_fmt(c['f1']):>6} {c['support']:>8}")
    lines += ["", "  confusion (rows: true, columns: predicted)",
              "  " + " " * width + " " + " ".join(f"{x[:6]:>6}" for x in v["labels"])]
    for label, row in zip(v["labels"], v["confusion"], strict=True):
        lines.append(f"  {label:>{width}} " + " ".join(f"{n:>6}" for n in row))
    lines += ["", f"intended use  {card['intended_use']}", "known weaknesses"]
    lines += [f"  - {w}" for w in card["known_weaknesses"]]
    if card.get("calibration"):
        c = card["calibration"]
        lines += ["", f"calibration   temperature {c['temperature']:.4f} fitted on {c['n']} "
                  f"images of {c.get('data', 'the validation data')}: expected calibration "
                  f"error {c['ece_before']:.4f} before, {c['ece_after']:.4f} after"]
    if card.get("labelled_photos"):
        r = card["labelled_photos"]
        lines += ["", f"labelled photos  {r['n']} {r['data']}, {r['positives']} positive, "
                  f"faces cropped by the {r['detector']} pipeline: accuracy {r['accuracy']:.3f}, "
                  f"balanced {r['balanced_accuracy']:.3f}, recall {r['recall']:.3f}, "
                  f"{r['false_alarms']} false alarms ({r['false_alarm_rate']:.1%}), "
                  f"{r['misses']} misses ({r['command']})"]
    if card.get("real_photos"):
        lines += ["", f"real photos   {card['real_photos']}"]
    return "\n".join(lines)


def val_files(card: Mapping[str, Any]) -> list[str] | None:
    """Held-out files (relative to the data folder) when the model's validation was split off
    its training data; None when it used a separate validation folder."""
    files = card["split"].get("val_files")
    return list(files) if files is not None else None


def relative_sources(sources: Sequence[str], root: str | os.PathLike) -> list[str]:
    """Dataset sources relative to the data folder `root`, '/'-separated, sorted."""
    root = Path(root).resolve()
    return sorted(Path(s).resolve().relative_to(root).as_posix() for s in sources)


def build_card(
    *,
    name: str,
    onnx_path: str | os.PathLike,
    run_dir: str | os.PathLike,
    evaluation: Mapping[str, Any],
    data: Mapping[str, str],
    split: Mapping[str, Any],
    command: str,
    intended_use: str,
    known_weaknesses: Sequence[str],
    summary: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A card from a finished run folder (config.yaml, metrics.json, model.safetensors), the
    shipped `.onnx` and an evaluation record (`Evaluation.to_json()` of that .onnx on the
    validation data)."""
    import onnx
    import yaml

    run = Path(run_dir)
    onnx_path = Path(onnx_path)
    config = yaml.safe_load((run / "config.yaml").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    record = parse_record(meta.get("mien"), onnx_path, required=("labels", "preprocess"))
    pre = record["preprocess"]
    hw = metrics.get("hardware", {})
    hardware = (f"{hw.get('cpu', '?')} ({hw.get('device', 'cpu')}, {hw.get('cpu_count', '?')} "
                f"cores, {hw.get('torch_threads', '?')} torch threads, "
                f"torch {hw.get('torch', '?')})")
    keep = ("n", "accuracy", "balanced_accuracy", "macro_f1", "ece", "labels", "per_class",
            "confusion", "split", "tta")
    card = {
        "format": CARD_FORMAT,
        "name": name,
        "summary": summary,
        "file": onnx_path.name,
        "sha256": sha256_of(onnx_path),
        "size_bytes": onnx_path.stat().st_size,
        "task": record.get("task", "classify"),
        "labels": list(record["labels"]),
        "arch": arch_text(record),
        "parameters": parameter_count(run / "model.safetensors"),
        "input": {"size": list(pre["input_size"]), "color": pre["color"],
                  "tta": record.get("tta", "none")},
        "framing": Framing.from_dict(record.get("framing")).to_dict(),
        "preprocess": pre,
        "data": dict(data),
        "split": dict(split),
        "config": config,
        "command": command,
        "training": {
            "seconds": metrics["train_seconds"], "epochs_run": metrics["epochs_run"],
            "best_epoch": metrics["best_epoch"], "stopped": metrics["stopped"],
            "weights_epoch": record.get("epoch", metrics["best_epoch"]),
            "best_val_accuracy_in_training": metrics["best_val_accuracy"],
            "images_per_second": metrics.get("images_per_second"),
            "num_train": metrics["num_train"], "num_val": metrics["num_val"],
            "hardware": hardware,
        },
        "validation": {k: evaluation[k] for k in keep if k in evaluation},
        "intended_use": intended_use,
        "known_weaknesses": list(known_weaknesses),
    }
    calibration = card_calibration(record, metrics)
    if calibration is not None:
        card["calibration"] = calibration
    card.update(extra or {})
    return card


def card_calibration(record: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict | None:
    """The calibration of the shipped file: the `calibration` its record carries (training and
    `mien calibrate` write it), else the run's metrics.json one when its temperature is the
    file's; None for an uncalibrated file."""
    if "temperature" not in record:
        return None
    own = record.get("calibration")
    if own is not None and own.get("temperature") == record["temperature"]:
        return dict(own)
    run = metrics.get("calibration")
    if run is not None and run.get("temperature") == record["temperature"]:
        return {"data": "validation split", **run}
    return None


def write_card(card: Mapping[str, Any], folder: str | os.PathLike | None = None) -> Path:
    folder = Path(folder) if folder is not None else weights_dir()
    path = folder / f"{card['name']}.json"
    path.write_text(json.dumps(card, indent=1) + "\n")
    return path


def default_data_root() -> Path:
    """$MIEN_DATA, else ../shared/data beside the repository (where tests look too)."""
    env = os.environ.get("MIEN_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def validation_dataset(card: Mapping[str, Any], data_root: str | os.PathLike | None = None):
    """The images a card's validation figures were measured on, in the card's order: its
    validation folder (`data.val_path` under `data_root`) or the held-out `split.val_files` of
    it. DatasetError when the folder is absent or files are missing."""
    from mien.data.datasets import open_dataset
    from mien.errors import DatasetError

    root = Path(data_root) if data_root is not None else default_data_root()
    folder = root / card["data"]["val_path"]
    splits = open_dataset(folder, attribute=card["data"].get("attribute"))
    ds = splits.get("val") or splits.get("all") or next(iter(splits.values()))
    wanted = val_files(card)
    if wanted is None:
        return ds
    rel = [Path(s).resolve().relative_to(folder.resolve()).as_posix() for s in ds.sources]
    where = {r: i for i, r in enumerate(rel)}
    missing = [f for f in wanted if f not in where]
    if missing:
        raise DatasetError(f"{folder}: {len(missing)} held-out file(s) of the {card['name']} "
                           f"card are missing, e.g. {missing[0]}; use the original data")
    ds = ds.subset([where[f] for f in wanted])
    if card["data"].get("reframe") == "celeba_face_crop":  # rebuilt as training saw them
        import numpy as np

        from mien.data.datasets import ImageDataset
        from mien.data.io import decode_image

        size = int(card["data"].get("reframe_size", 64))
        arrays = np.stack([decode_image(celeba_face_crop_jpeg(ds.load(i, "rgb"), size), "rgb",
                                        name=ds.sources[i]) for i in range(len(ds))])
        ds = ImageDataset(ds.classes, ds.sources, ds.labels, arrays=arrays, name=ds.name)
    return ds
