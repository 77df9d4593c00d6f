"""The options of a head or anomaly-detector run, beside the `TrainConfig` that carries the
data, split, seed and run-folder options they share with CNN training.

In a YAML config these sit at the top level next to the training options:
`head: svm`, `layer: dense2`, `head_params: {C: 10}`, `grid: {C: [1, 10]}` (or `grid: true`
for the head's documented default grid), `anomaly: true`, `normal_class: smile`, ...
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mien.training.config import ConfigError, TrainConfig, load_config

BACKBONES = ("cnn", "dlib-resnet")
SCORES = ("mse", "wasserstein")


@dataclass(frozen=True)
class HeadConfig:
    head: str | None = None  # a registered head (`mien.heads.list_heads()`)
    backbone: str = "cnn"  # cnn: the network given by --from; dlib-resnet: dlib's face ResNet
    layer: str = "pre_logits"  # the CNN's embedding layer (fer-*: dense1, dense2, pre_logits)
    head_params: Mapping[str, Any] = field(default_factory=dict)  # user names, see head_info
    grid: bool = False  # cross-validated grid search
    grid_values: Mapping[str, list] | None = None  # None: the head's documented default grid
    cv: int = 3  # grid-search folds (stratified)
    n_jobs: int = -1  # processes for the grid search and parallel heads; -1 = every core
    # Fit on at most this many training images (stratified random subset, mirrors come on
    # top): RBF SVM time grows between N^2 and N^3, so 28k FER embeddings take far longer
    # than 10k, and dlib embeds only a few images per second.
    max_train: int | None = None
    cache_dir: str | None = None  # embedding cache; None: $MIEN_CACHE or ~/.cache/mien

    anomaly: bool = False  # train the autoencoder on one class and flag what it reconstructs badly
    normal_class: str | None = None
    score: str = "mse"  # mse | wasserstein (between pixel histograms of image and reconstruction)
    quantile: float = 0.9  # threshold: this quantile of the training (normal) images' scores

    def __post_init__(self) -> None:
        if self.head and self.anomaly:
            raise ConfigError("--head and --anomaly exclude each other: a head classifies "
                              "embeddings, --anomaly trains an autoencoder")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone {self.backbone!r}: choose one of {', '.join(BACKBONES)}")
        if self.score not in SCORES:
            raise ConfigError(f"score {self.score!r}: choose one of {', '.join(SCORES)}")
        if not 0.0 < self.quantile < 1.0:
            raise ConfigError(f"quantile {self.quantile!r}: choose a value in (0, 1)")
        if self.cv < 2:
            raise ConfigError(f"cv {self.cv!r}: a grid search needs at least 2 folds")
        if self.max_train is not None and self.max_train < 2:
            raise ConfigError(f"max_train {self.max_train!r}: keep at least 2 embeddings")
        if self.anomaly and not self.normal_class:
            raise ConfigError("--anomaly needs --normal-class NAME: the class it learns to "
                              "reconstruct")

    @property
    def active(self) -> bool:
        return bool(self.head or self.anomaly)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["head_params"] = dict(self.head_params)
        return d


HEAD_KEYS = {f.name for f in dataclasses.fields(HeadConfig)}


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """`["C=10", "gamma=scale", "depth=none"]` -> {"C": 10, "gamma": "scale", "depth": None}."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {pair!r}: write NAME=VALUE, e.g. C=10")
        out[key.strip()] = None if value.strip().lower() == "none" else yaml.safe_load(value)
    return out


def resolve_head_config(file: str | os.PathLike | None, train_options: Mapping[str, Any],
                        head_options: Mapping[str, Any]) -> tuple[TrainConfig, HeadConfig] | None:
    """Both configs from the YAML file and the command line (given options win), or None when
    neither asks for a head or an anomaly detector (an ordinary CNN run)."""
    merged = load_config(file) if file else {}
    head = {k: merged.pop(k) for k in list(merged) if k in HEAD_KEYS}
    if isinstance(head.get("grid"), Mapping):
        head["grid_values"] = {k: list(v) if isinstance(v, list | tuple) else [v]
                               for k, v in head.pop("grid").items()}
        head["grid"] = True
    head.update({k: v for k, v in head_options.items() if v is not None})
    if "head_params" in head and not isinstance(head["head_params"], Mapping):
        raise ConfigError("head_params: give NAME: VALUE pairs")
    try:
        hcfg = HeadConfig(**head)
    except TypeError as exc:
        raise ConfigError(f"{file or 'options'}: {exc}") from exc
    if not hcfg.active:
        default = HeadConfig()
        stray = sorted(k for k, v in head.items() if v != getattr(default, k))
        if stray:
            raise ConfigError(f"{', '.join(stray)}: these options belong to a head or an "
                              "anomaly detector; add --head NAME or --anomaly")
        return None
    merged.update({k: v for k, v in train_options.items() if v is not None})
    return TrainConfig.from_dict(merged, source=str(file) if file else "options"), hcfg
