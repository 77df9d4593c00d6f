"""VGG-11 / VGG-19 in plain torch with the reports' replacement head (dense256, dropout, dense N).

Global average pooling replaces Keras' Flatten: identical at 48x48 (the map is 1x1 there) and
independent of the input size elsewhere.
"""

from __future__ import annotations

from torch import nn

from mien.errors import MienError
from mien.models.base import ZooModel, pooled_dense_head
from mien.models.registry import register_model

_CONFIGS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


class VGG(ZooModel):
    embedding_layers = ("pooled", "dense1", "pre_logits")

    def __init__(self, arch: str, num_classes: int, in_channels: int,
                 input_size: tuple[int, int], batch_norm: bool = False, dropout: float = 0.2):
        super().__init__()
        if min(input_size) < 32:
            raise MienError(f"model {arch!r}: input_size {input_size} is below 32x32, "
                            "which its five 2x poolings need; use a larger input_size")
        layers: list[nn.Module] = []
        cin = in_channels
        for v in _CONFIGS[arch]:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            layers.append(nn.Conv2d(cin, v, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            cin = v
        self.features = nn.Sequential(*layers)
        self.pre_logits = pooled_dense_head(cin, dropout=dropout)
        self.classifier = nn.Linear(256, num_classes)
        self._finish()


def _register(arch: str) -> None:
    @register_model(
        arch, input_size=(48, 48), in_channels=1, num_classes=7,
        description=f"{arch.upper()} (plain torch, optional batch_norm) with head dense256-dropout",
    )
    def build(num_classes: int, in_channels: int, input_size: tuple[int, int],
              batch_norm: bool = False, dropout: float = 0.2) -> VGG:
        return VGG(arch, num_classes, in_channels, input_size, batch_norm, dropout)


for _arch in _CONFIGS:
    _register(_arch)
