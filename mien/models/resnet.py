"""ResNet-18 / ResNet-50 in plain torch with the reports' replacement head.

Small inputs (below 112 px, e.g. 48x48 faces) get a 3x3 stride-1 stem without max pooling, as
for CIFAR: the ImageNet stem would shrink a 48x48 face to 12x12 before the first block.
"""

from __future__ import annotations

import torch
from torch import nn

from mien.models.base import ZooModel, pooled_dense_head
from mien.models.registry import register_model


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(*_conv_bn(cin, width, 3, stride), nn.ReLU(inplace=True),
                                  *_conv_bn(width, cout, 3))
        self.shortcut = (nn.Sequential(*_conv_bn(cin, cout, 1, stride))
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class Bottleneck(BasicBlock):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        nn.Module.__init__(self)
        cout = width * self.expansion
        self.body = nn.Sequential(
            *_conv_bn(cin, width, 1), nn.ReLU(inplace=True),
            *_conv_bn(width, width, 3, stride), nn.ReLU(inplace=True),
            *_conv_bn(width, cout, 1),
        )
        self.shortcut = (nn.Sequential(*_conv_bn(cin, cout, 1, stride))
                         if stride != 1 or cin != cout else nn.Identity())


_CONFIGS = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet50": (Bottleneck, (3, 4, 6, 3))}


class ResNet(ZooModel):
    embedding_layers = ("pooled", "dense1", "pre_logits")

    def __init__(self, arch: str, num_classes: int, in_channels: int,
                 input_size: tuple[int, int], small_stem: bool | None = None,
                 dropout: float = 0.2):
        super().__init__()
        block, depths = _CONFIGS[arch]
        if small_stem is None:
            small_stem = min(input_size) < 112
        stem = (_conv_bn(in_channels, 64, 3) + [nn.ReLU(inplace=True)] if small_stem else
                _conv_bn(in_channels, 64, 7, 2) + [nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)])
        layers: list[nn.Module] = [nn.Sequential(*stem)]
        cin = 64
        for i, depth in enumerate(depths):
            width = 64 * 2**i
            blocks = []
            for j in range(depth):
                blocks.append(block(cin, width, 2 if i > 0 and j == 0 else 1))
                cin = width * block.expansion
            layers.append(nn.Sequential(*blocks))
        self.features = nn.Sequential(*layers)
        self.pre_logits = pooled_dense_head(cin, dropout=dropout)
        self.classifier = nn.Linear(256, num_classes)
        self._finish()
        for m in self.modules():  # zero-init the last BN of each residual branch (Goyal et al.)
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.body[-1].weight)


def _register(arch: str) -> None:
    @register_model(
        arch, input_size=(48, 48), in_channels=1, num_classes=7,
        description=f"{arch.replace('resnet', 'ResNet-')} (plain torch, small-input stem) "
                    "with head dense256-dropout",
    )
    def build(num_classes: int, in_channels: int, input_size: tuple[int, int],
              small_stem: bool | None = None, dropout: float = 0.2) -> ResNet:
        return ResNet(arch, num_classes, in_channels, input_size, small_stem, dropout)


for _arch in _CONFIGS:
    _register(_arch)
