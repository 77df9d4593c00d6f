"""ImageNet weights from a user's file (torchvision's or timm's state dict) into the zoo's ResNet
and VGG, matched by key and shape.

The zoo names modules its own way (its `features.0.0` is torchvision's `conv1`), so each
architecture has one table of module-name pairs, read in either direction. timm's ResNet and VGG
backbones use torchvision's names; the two differ only in their classifiers, which never fit the
zoo's head (dense256, then N classes): that head is always new. A 1-channel stem gets the sum of
the RGB filters, which answers a gray image as the RGB network answers its R = G = B copy.
Nothing here downloads: the file is the user's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mien.errors import ModelFileError

# Pixel statistics of ImageNet (after scaling to [0, 1]) that every torchvision/timm
# checkpoint was trained with; a gray input takes their means, as its summed stem sees R = G = B.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedError(ModelFileError):
    """A pretrained file cannot be read or does not fit the architecture."""


@dataclass(frozen=True, slots=True)
class Layout:
    # (zoo prefix, file prefix) pairs; {s}, {b} stand for stage and block numbers.
    pairs: tuple[tuple[str, str], ...]
    file_head: tuple[str, ...]  # prefixes of the file's classifier, never loaded
    stem: str  # the zoo key of the first convolution, whose input channels may differ
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)  # the layout the file needs


_RESNET = Layout(
    pairs=(
        ("features.0.0.", "conv1."),
        ("features.0.1.", "bn1."),
        ("features.{s}.{b}.body.0.", "layer{s}.{b}.conv1."),
        ("features.{s}.{b}.body.1.", "layer{s}.{b}.bn1."),
        ("features.{s}.{b}.body.3.", "layer{s}.{b}.conv2."),
        ("features.{s}.{b}.body.4.", "layer{s}.{b}.bn2."),
        ("features.{s}.{b}.body.6.", "layer{s}.{b}.conv3."),
        ("features.{s}.{b}.body.7.", "layer{s}.{b}.bn3."),
        ("features.{s}.{b}.shortcut.", "layer{s}.{b}.downsample."),
    ),
    file_head=("fc.",),
    stem="features.0.0.weight",
    # The ImageNet stem (7x7 stride 2, max pooling): its filters are what the file holds.
    model_kwargs={"small_stem": False},
)
# The zoo's VGG numbers its `features` as torchvision does (conv, [bn,] relu, ..., pool).
_VGG = Layout(pairs=(("features.", "features."),),
              file_head=("classifier.", "pre_logits.", "head."),  # torchvision's, timm's
              stem="features.0.weight")
LAYOUTS: dict[str, Layout] = {"resnet18": _RESNET, "resnet50": _RESNET,
                              "vgg11": _VGG, "vgg19": _VGG}


def _layout(arch: str, source: str) -> Layout:
    if arch not in LAYOUTS:
        raise PretrainedError(f"{source}: pretrained weights fit {', '.join(LAYOUTS)}, not "
                              f"{arch!r}; pick one of those with --model")
    return LAYOUTS[arch]


def _pattern(template: str) -> re.Pattern:
    return re.compile(re.escape(template).replace(r"\{s\}", r"(?P<s>\d+)")
                      .replace(r"\{b\}", r"(?P<b>\d+)"))


def _translate(layout: Layout, key: str, to_zoo: bool) -> str | None:
    for zoo, other in layout.pairs:
        src, dst = (other, zoo) if to_zoo else (zoo, other)
        m = _pattern(src).match(key)
        if m:
            return dst.format(**m.groupdict()) + key[m.end():]
    return None


def zoo_key(arch: str, file_key: str) -> str | None:
    """The zoo's name of a torchvision/timm key (None: no counterpart)."""
    return _translate(LAYOUTS[arch], file_key, to_zoo=True)


def file_key(arch: str, key: str) -> str | None:
    """The torchvision/timm name of a zoo key (None: the zoo's own head)."""
    return _translate(LAYOUTS[arch], key, to_zoo=False)


def imagenet_normalization(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return ((round(sum(IMAGENET_MEAN) / 3, 3),) * channels,
            (round(sum(IMAGENET_STD) / 3, 3),) * channels)


def read_state_dict(path: str | os.PathLike) -> dict:
    """Tensors of a `.safetensors` file, or of a `.pth`/`.pt`/`.bin` one through
    torch.load(weights_only=True) (nothing is unpickled but tensors); a {"state_dict": ...} or
    {"model": ...} wrapper and DataParallel's `module.` prefix are taken off."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise PretrainedError(f"{p}: not found; --pretrained takes a .pth or .safetensors "
                              "state dict you have downloaded")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        elif p.suffix in (".pth", ".pt", ".bin"):
            state = torch.load(p, map_location="cpu", weights_only=True)
        else:
            raise PretrainedError(f"{p}: unknown kind of file; --pretrained takes a state dict "
                                  "as .pth, .pt, .bin or .safetensors")
    except PretrainedError:
        raise
    except Exception as exc:  # pickle, zip and safetensors each raise their own kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PretrainedError(f"{p}: not a readable state dict ({first}); save the weights "
                              "alone with torch.save(model.state_dict(), ...)") from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor)
                                                 for v in state.values()):
        raise PretrainedError(f"{p}: holds no state dict of tensors; save the weights alone "
                              "with torch.save(model.state_dict(), ...)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def model_kwargs_for(arch: str, state: Mapping) -> dict[str, Any]:
    """The zoo options that give `arch` the file's layout: the ImageNet stem for ResNet,
    batch norm for a VGG file that has it (torchvision's vgg19_bn)."""
    kwargs = dict(LAYOUTS[arch].model_kwargs)
    if LAYOUTS[arch] is _VGG:
        kwargs["batch_norm"] = any(k.endswith("running_mean") for k in state)
    return kwargs


@dataclass(frozen=True, slots=True)
class PretrainedLoad:
    """What `load_state` did: the report `mien train --pretrained` prints."""

    source: str
    arch: str
    loaded: tuple[str, ...]  # zoo keys filled from the file
    values: int  # numbers loaded
    new: tuple[str, ...]  # zoo keys left at their fresh initialisation (the head)
    unused: tuple[str, ...]  # file keys of its own classifier
    summed_stem: str | None = None  # the file key summed over RGB for a 1-channel stem

    def lines(self) -> list[str]:
        out = [f"pretrained: loaded {len(self.loaded)} tensors ({self.values:,} values) of "
               f"{self.arch}'s backbone from {self.source}"]
        heads = sorted({k.rsplit(".", 1)[0] for k in self.new})
        unused = sorted({k.rsplit(".", 1)[0] for k in self.unused})
        out.append(f"pretrained: new (initialised at random): {', '.join(heads)}"
                   + (f"; the file's classifier ({', '.join(unused)}) is not used"
                      if unused else ""))
        if self.summed_stem:
            out.append(f"pretrained: new 1-channel stem {LAYOUTS[self.arch].stem}: "
                       f"{self.summed_stem} summed over its RGB filters")
        return out


def load_state(model, state: Mapping, *, source: str = "state dict") -> PretrainedLoad:
    """Copy a torchvision/timm-layout `state` into a zoo `model` built by create_model. Every
    backbone key must be in the file with its shape (a 1-channel stem sums the RGB filters);
    the head stays new. PretrainedError names the first key that does not fit."""
    import torch

    arch = getattr(model, "arch", type(model).__name__)
    layout = _layout(arch, source)
    target = model.state_dict()
    fit: dict[str, torch.Tensor] = {}
    unused, summed = [], None
    for key, tensor in state.items():
        if key.startswith(layout.file_head):
            unused.append(key)
            continue
        zk = zoo_key(arch, key)
        if zk is None or zk not in target:
            raise PretrainedError(f"{source}: {key} has no counterpart in {arch}; is the file "
                                  f"a {arch} state dict in torchvision's or timm's layout?")
        have, want = tuple(tensor.shape), tuple(target[zk].shape)
        if (zk == layout.stem and len(have) == len(want) == 4 and (have[1], want[1]) == (3, 1)
                and (have[0], *have[2:]) == (want[0], *want[2:])):
            tensor, summed = tensor.sum(dim=1, keepdim=True), key
        elif have != want:
            raise PretrainedError(f"{source}: {key} is {have} in the file but {arch} needs "
                                  f"{want} ({zk}); is the file a {arch} state dict?")
        fit[zk] = tensor
    head = ("pre_logits.", "classifier.")
    for zk in target:
        if zk not in fit and not zk.startswith(head) and not zk.endswith("num_batches_tracked"):
            raise PretrainedError(f"{source}: {file_key(arch, zk)} is missing ({arch}'s {zk}); "
                                  f"is the file a whole {arch} state dict?")
    with torch.no_grad():
        for zk, tensor in fit.items():
            target[zk].copy_(tensor)
    loaded = tuple(k for k in target if k in fit)
    return PretrainedLoad(
        source=source, arch=arch, loaded=loaded,
        values=sum(target[k].numel() for k in loaded if not k.endswith("num_batches_tracked")),
        new=tuple(k for k in target if k.startswith(head)), unused=tuple(unused),
        summed_stem=summed)


def create_pretrained(arch: str, path: str | os.PathLike, num_classes: int, in_channels: int,
                      input_size: tuple[int, int]):
    """(model, report): the zoo's `arch` in the file's layout, its backbone from the file."""
    from mien.models.registry import create_model

    _layout(arch, str(path))
    state = read_state_dict(path)
    model = create_model(arch, num_classes, in_channels=in_channels, input_size=input_size,
                         **model_kwargs_for(arch, state))
    return model, load_state(model, state, source=str(path))
