"""Every option of a training run in one frozen dataclass, loadable from YAML and saved with the
run, so `config.yaml` in a run folder is enough to train that run again."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mien.data.preprocess import Framing
from mien.errors import MienError
from mien.models.loading import TTA_MODES
from mien.models.pretrained import LAYOUTS as PRETRAINED_LAYOUTS

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("none", "step", "cosine", "onecycle")
LOSSES = ("cross_entropy", "squared_hinge", "bce")
EQUALIZE = ("none", "hist", "clahe")
COLORS = ("gray", "rgb")
SELECT_BY = ("accuracy", "balanced_accuracy")
CLASS_WEIGHTS = ("none", "balanced", "sqrt")
# YAML / CLI spellings that are not Python identifiers.
ALIASES = {"from": "transfer_from", "max-minutes": "max_minutes"}


class ConfigError(MienError):
    """A training option has a wrong value or a config file cannot be read."""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    # --- data ---
    data: str = ""  # a class-per-folder tree, a train/val/test tree, or a FER2013 CSV
    # A folder/CSV of validation images, or a fraction of `data` split off per class.
    # None: the dataset's own val split when it has one, else 0.1 of it.
    val: str | float | None = None
    split_seed: int = 0  # fixed apart from `seed`, so repeats are judged on the same images
    classes: str | None = None  # "happy,sad": keep these classes, in this order
    merge: str | None = None  # "disgust=angry": fold classes into others
    attribute: str | None = None  # CelebA folder: the attribute to classify, e.g. Eyeglasses
    strict: bool = False  # unreadable images: stop (True) or report and skip them (False)

    # --- model and its input; None takes the architecture's own default ---
    model: str = ""
    input_size: tuple[int, int] | None = None  # (height, width)
    color: str | None = None  # gray | rgb
    equalize: str = "none"  # none | hist | clahe, applied at training and at inference alike
    # Gaussian blur sigma applied to every input at training and inference alike: for training
    # sets blurrier than the faces the model will read (`mien data check` compares sharpness).
    blur_sigma: float = 0.0
    # The blur of training batches; None: blur_sigma. 0 when the training images are already
    # blurred (FER2013's train here), so only validation and inference inputs are blurred.
    train_blur_sigma: float | None = None
    # Test-time augmentation stored with the weights and done by every prediction (evaluate,
    # analyze, serve): "flip" averages the probabilities of the face and its mirror.
    tta: str = "none"
    # How `mien analyze` should cut faces from photos for this model: a square of the detector
    # box's side x (1 + margin), eyes levelled when align. Recorded with the weights, never used
    # in training: set it to match how the training images were framed.
    framing_margin: float = 0.2
    framing_align: bool = True

    # --- optimisation ---
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adam"
    momentum: float = 0.9  # sgd only (Nesterov is not used: plain momentum is what papers report)
    lr: float = 1e-3
    weight_decay: float = 0.0  # L2 on every weight (Adam: coupled, as in torch.optim.Adam)
    schedule: str = "none"
    step_epochs: int = 10  # schedule "step": lr x 0.1 every this many epochs
    warmup_epochs: float = 0.0  # linear ramp from 0 before the schedule; helps large lr / batch
    patience: int = 0  # stop after this many epochs without a better val score (0 = never)
    # The validation score that picks the best epoch (and drives patience): balanced_accuracy
    # (mean recall per class) suits imbalanced data such as CelebA's 7 % Eyeglasses.
    select: str = "accuracy"

    # --- loss; None takes the architecture's own ---
    loss: str | None = None
    label_smoothing: float = 0.0  # cross_entropy only
    # none | balanced: weight classes by n / (k * count) | sqrt: its square root (FER's disgust)
    class_weights: str = "none"
    # c * sum(w**2) of the output layer added to the loss, as Keras' kernel_regularizer=l2(c)
    # in the reports' SVM-like heads (Tang 2013); None: the architecture's own value.
    last_layer_l2: float | None = None

    # Multi-task training on a CelebA folder: also predict these of its 40 attributes ("all":
    # all but `attribute`) from the embedding, through a head dropped after training. Naming
    # hats, age, skin and gender keeps them from passing for the attribute trained.
    aux_attributes: str | None = None
    aux_weight: float = 0.5  # the auxiliary loss (mean BCE over its attributes) is scaled by this
    # Knowledge distillation (mien.training.distill): also learn the class probabilities of
    # these trained models ("run,model.onnx,expression": averaged), computed once per training
    # image; the loss is (1 - distill_weight) * labels + distill_weight * teacher.
    teacher: str | None = None
    distill_weight: float = 0.5
    distill_temperature: float = 2.0  # softens both sides' probabilities before comparing

    # --- augmentation (training only, before preprocessing) ---
    augment: bool = True  # master switch for the toggles below
    flip: bool = True  # horizontal flip; faces are near-symmetric
    rotate: float = 10.0  # max degrees either way; 0 = off
    crop: float = 0.1  # random crop losing this fraction of height and width, resized back
    brightness: float = 0.2  # max shift, as a fraction of the 0..255 range
    contrast: float = 0.2  # contrast factor drawn from [1 - this, 1 + this]
    blur: float = 0.0  # probability of a Gaussian blur (sigma 0.1..1.5)
    scale_shift: float = 0.0  # max zoom change and shift, as fractions of the size
    # Gamma drawn log-uniformly from [1 / (1 + this), 1 + this]: lighter and darker skin and
    # exposure, so darkness alone cannot stand for a class (sunglasses, say); 0 = off.
    gamma: float = 0.0
    grayscale: float = 0.0  # probability of turning an RGB image gray (kept as 3 channels)
    # Probability of random erasing: a grey rectangle of 2-25 % of the face (hands, hair,
    # glasses and microphones cover faces in real photos).
    erase: float = 0.0
    mirror_double: bool = False  # add the mirror of every training image (doubles the epoch)

    # --- run ---
    seed: int = 0
    repeats: int = 1  # train this many seeds (seed, seed+1, ...) into RUN/seed-K/
    # With repeats: also average the seeds into one model, RUN/ensemble (`mien ensemble`):
    # seeds make different mistakes, so their mean beats each of them.
    ensemble: bool = False
    # The ensemble's own test-time augmentation ("none" | "flip"); None keeps the members' tta.
    # Ignored without `ensemble`, so `--seed K --repeats 1 --no-ensemble` trains one member.
    # Each flipped view costs one more pass of every member, and averaging seeds already gains
    # most of what flipping does.
    ensemble_tta: str | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N; auto picks cuda when present
    amp: bool = True  # mixed precision on cuda (bfloat16 where supported); ignored on CPU
    num_workers: int = 0  # threads decoding and augmenting images; 0 = chosen from the CPU count
    threads: int = 0  # torch CPU threads; 0 = torch's default
    max_minutes: float | None = None  # training-time budget: stop after the epoch that crosses it

    # --- transfer learning ---
    transfer_from: str | None = None  # a run folder, a .safetensors checkpoint or a shipped model
    # Or ImageNet weights of `model` (resnet18/50, vgg11/19) from the user's torchvision or timm
    # state dict (.pth / .safetensors): nothing is downloaded. Inputs then take ImageNet's
    # mean/std, which those weights were trained with.
    pretrained: str | None = None
    freeze: bool = False  # train only the new head
    backbone_lr_mult: float = 0.1  # transfer without freeze: backbone lr = lr * this

    out: str | None = None  # run folder; None: runs/<model>-<UTC time>

    def __post_init__(self) -> None:
        _check(self)

    @property
    def framing(self) -> Framing:
        return Framing(self.framing_margin, self.framing_align)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **_normalise(changes))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["input_size"] is not None:
            d["input_size"] = list(d["input_size"])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "config") -> TrainConfig:
        d = _normalise(dict(d))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {', '.join(unknown)}; "
                              "see `mien train --help`")
        try:
            return cls(**d)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from exc


def _normalise(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        k = ALIASES.get(k, k.replace("-", "_"))
        if k == "input_size" and v is not None:
            v = _parse_size(v)
        if k == "val" and isinstance(v, str):
            v = _parse_val(v)
        if k in ("classes", "merge") and isinstance(v, list | tuple):
            v = ",".join(str(x) for x in v)
        if k == "merge" and isinstance(v, Mapping):
            v = ",".join(f"{a}={b}" for a, b in v.items())
        out[k] = v
    return out


def _parse_size(v: Any) -> tuple[int, int]:
    if isinstance(v, str):
        v = v.lower().replace("x", ",").split(",")
    if isinstance(v, int):
        v = (v, v)
    try:
        size = tuple(int(x) for x in v)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"input_size {v!r}: give HxW, e.g. 48x48") from exc
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 8:
        raise ConfigError(f"input_size {v!r}: give HxW of at least 8x8, e.g. 48x48")
    return size  # type: ignore[return-value]


def _parse_val(v: str) -> str | float:
    try:
        return float(v)
    except ValueError:
        return v


def _check(c: TrainConfig) -> None:
    def bad(option: str, value: Any, fix: str) -> ConfigError:
        return ConfigError(f"{option} {value!r}: {fix}")

    for option, value, allowed in (
        ("optimizer", c.optimizer, OPTIMIZERS),
        ("schedule", c.schedule, SCHEDULES),
        ("equalize", c.equalize, EQUALIZE),
        ("class_weights", c.class_weights, CLASS_WEIGHTS),
    ):
        if value not in allowed:
            raise bad(option, value, f"choose one of {', '.join(allowed)}")
    if c.loss is not None and c.loss not in LOSSES:
        raise bad("loss", c.loss, f"choose one of {', '.join(LOSSES)}")
    if c.color is not None and c.color not in COLORS:
        raise bad("color", c.color, "choose gray or rgb")
    if isinstance(c.val, float) and not 0.0 < c.val < 1.0:
        raise bad("val", c.val, "a fraction must lie between 0 and 1 (or give a folder)")
    if c.ensemble and c.repeats < 2:
        raise bad("ensemble", c.ensemble, "needs repeats of 2 or more (the seeds to average)")
    for option in ("epochs", "batch_size", "repeats", "step_epochs"):
        if int(getattr(c, option)) < 1:
            raise bad(option, getattr(c, option), "must be at least 1")
    for option in ("lr", "backbone_lr_mult"):
        if not getattr(c, option) > 0:
            raise bad(option, getattr(c, option), "must be positive")
    for option in ("weight_decay", "warmup_epochs", "patience", "rotate", "crop", "brightness",
                   "contrast", "scale_shift", "gamma", "aux_weight", "num_workers", "threads",
                   "blur_sigma", "train_blur_sigma", "framing_margin"):
        if getattr(c, option) is not None and getattr(c, option) < 0:
            raise bad(option, getattr(c, option), "must be 0 or more")
    if c.select not in SELECT_BY:
        raise bad("select", c.select, f"choose one of {', '.join(SELECT_BY)}")
    if c.tta not in TTA_MODES:
        raise bad("tta", c.tta, f"choose one of {', '.join(TTA_MODES)}")
    if c.ensemble_tta is not None and c.ensemble_tta not in TTA_MODES:
        raise bad("ensemble_tta", c.ensemble_tta, f"choose one of {', '.join(TTA_MODES)}")
    if not 0.0 <= c.label_smoothing < 1.0:
        raise bad("label_smoothing", c.label_smoothing, "choose a value in [0, 1)")
    for option in ("blur", "grayscale", "erase"):
        if not 0.0 <= getattr(c, option) <= 1.0:
            raise bad(option, getattr(c, option), "is a probability in [0, 1]")
    if c.crop >= 0.5:
        raise bad("crop", c.crop, "crop away less than half of the height and width")
    if c.max_minutes is not None and not c.max_minutes > 0:
        raise bad("max_minutes", c.max_minutes, "must be positive")
    if c.aux_attributes and not c.attribute:
        raise bad("aux_attributes", c.aux_attributes, "needs CelebA data and `attribute` (the "
                  "attribute trained); drop it for other data")
    if not 0.0 <= c.distill_weight <= 1.0:
        raise bad("distill_weight", c.distill_weight, "choose a value in [0, 1]")
    if not c.distill_temperature > 0:
        raise bad("distill_temperature", c.distill_temperature, "must be positive")
    if c.teacher is not None and c.loss not in (None, "cross_entropy"):
        raise bad("teacher", c.teacher, "distillation needs the cross_entropy loss")
    if c.freeze and not (c.transfer_from or c.pretrained):
        raise ConfigError("--freeze needs --from RUN_OR_MODEL or --pretrained FILE: there is no "
                          "trained backbone to keep")
    if c.pretrained and c.transfer_from:
        raise ConfigError(f"--pretrained {c.pretrained} and --from {c.transfer_from} both give "
                          "the starting weights; keep one")
    if c.pretrained and c.model and c.model not in PRETRAINED_LAYOUTS:
        raise bad("model", c.model, f"--pretrained fits {', '.join(PRETRAINED_LAYOUTS)}; "
                  "pick one of those")


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """The options in a YAML file, as a dict to merge under command-line options."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror}); check the path") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc}); fix the file") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected option: value pairs at the top level")
    return _normalise(data)


def resolve_config(file: str | os.PathLike | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the YAML file, then the options given (None = not given)."""
    merged: dict[str, Any] = load_config(file) if file else {}
    merged.update({k: v for k, v in _normalise(overrides).items() if v is not None})
    return TrainConfig.from_dict(merged, source=str(file) if file else "options")


def save_config(config: TrainConfig, path: str | os.PathLike) -> None:
    import yaml

    from mien.training.checkpoint import write_text

    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
