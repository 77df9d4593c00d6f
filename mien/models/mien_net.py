"""mien-net: our own small CNN for face attributes, built for accuracy per CPU millisecond.

Design (why): faces at 48x48 carry expression in a few pixels around the mouth and eyes, so the
stem keeps full resolution for one cheap 3x3 convolution; everything after is depthwise-separable
(MobileNet) with inverted-residual blocks and batch norm, which ONNX Runtime fuses into the
convolutions. Channels double when the resolution halves (48 -> 24 -> 12 -> 6 -> 3), global
average pooling makes the head independent of the input size, so the same network runs on
64x64 RGB smile / glasses crops.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from mien.models.base import ChannelsLastModel
from mien.models.registry import register_model


def _conv_bn_act(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                 act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """[1x1 expand] -> 3x3 depthwise (stride) -> 1x1 linear projection [+ identity]."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = [_conv_bn_act(cin, hidden, 1)] if expand != 1 else []
        layers += [_conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
                   _conv_bn_act(hidden, cout, 1, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


# stem width, then stages of (expansion, out channels, blocks, stride of the first block),
# then the width of the last 1x1 convolution (the embedding size; 0 keeps the last stage's).
# Expansion 4 is affordable because the stages are narrow; the last stage works at 6x6 (48x48
# input): a further stage at 3x3 added ~200k parameters in trials for little extra compute use.
_CONFIGS = {
    "s": (16, ((1, 16, 1, 1), (4, 24, 2, 2), (4, 48, 3, 2), (4, 80, 3, 2)), 256),
    "m": (24, ((1, 24, 1, 1), (4, 32, 2, 2), (4, 64, 3, 2), (4, 96, 3, 2)), 256),
}


class MienNet(ChannelsLastModel):
    def __init__(self, size: str, num_classes: int, in_channels: int,
                 input_size: tuple[int, int], dropout: float = 0.2):
        super().__init__()
        stem, stages, last = _CONFIGS[size]
        layers: list[nn.Module] = [_conv_bn_act(in_channels, stem, 3)]
        cin = stem
        for expand, cout, blocks, stride in stages:
            for i in range(blocks):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        if last:
            layers.append(_conv_bn_act(cin, last, 1))
            cin = last
        self.features = nn.Sequential(*layers)
        self.pre_logits = nn.Sequential(OrderedDict(
            pooled=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
            drop=nn.Dropout(dropout),
        ))
        self.classifier = nn.Linear(cin, num_classes)
        self._finish()
        self._channels_last()


@register_model("mien-net-s", input_size=(48, 48), in_channels=1, num_classes=7)
def mien_net_s(num_classes: int, in_channels: int, input_size: tuple[int, int],
               dropout: float = 0.2) -> MienNet:
    """mien's expression network: inverted-residual CNN, ~220k params, ~23 MMAC at 48x48 gray."""
    return MienNet("s", num_classes, in_channels, input_size, dropout)


@register_model("mien-net-m", input_size=(48, 48), in_channels=1, num_classes=7)
def mien_net_m(num_classes: int, in_channels: int, input_size: tuple[int, int],
               dropout: float = 0.2) -> MienNet:
    """Wider mien-net: ~330k params, ~39 MMAC at 48x48 gray."""
    return MienNet("m", num_classes, in_channels, input_size, dropout)


@register_model("mien-net-64", input_size=(64, 64), in_channels=3, num_classes=2)
def mien_net_64(num_classes: int, in_channels: int, input_size: tuple[int, int],
                dropout: float = 0.2) -> MienNet:
    """mien-net-s for 64x64 RGB smile / glasses crops (binary by default)."""
    return MienNet("s", num_classes, in_channels, input_size, dropout)
