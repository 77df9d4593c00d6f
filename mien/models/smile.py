"""smile-cnn: the small two-convolution smile classifier of the SMILEs reports (64x64 RGB)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from mien.models.base import ZooModel, conv_relu, dense, flat_size
from mien.models.registry import register_model


class SmileCNN(ZooModel):
    """conv32 3x3, pool, conv64 3x3, pool (valid convolutions), dense128, dense N."""

    def __init__(self, num_classes: int, in_channels: int, input_size: tuple[int, int]):
        super().__init__()
        self.features = nn.Sequential(
            conv_relu(in_channels, 32), nn.MaxPool2d(2), conv_relu(32, 64), nn.MaxPool2d(2)
        )
        flat = flat_size(self.features, "smile-cnn", in_channels, input_size)
        self.pre_logits = nn.Sequential(
            OrderedDict(flatten=nn.Flatten(), dense1=dense(flat, 128))
        )
        self.classifier = nn.Linear(128, num_classes)
        self._finish()


@register_model("smile-cnn", input_size=(64, 64), in_channels=3, num_classes=2)
def smile_cnn(num_classes: int, in_channels: int, input_size: tuple[int, int]) -> SmileCNN:
    """Smile CNN of the SMILEs reports: 2 valid 3x3 convs (32, 64) + dense128, 64x64 RGB."""
    return SmileCNN(num_classes, in_channels, input_size)
