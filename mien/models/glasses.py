"""glasses-cnn and glasses-cnn-deep: the eyeglasses classifiers of the glasses report (160x160 RGB).

Kernel sizes and pooling follow from the reported parameter counts: 3x3 valid convolutions and
2x2 max pooling give exactly 222,210 and 1,297,857 parameters at 160x160x3.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from mien.models.base import ZooModel, conv_relu, dense, flat_size
from mien.models.registry import register_model


class GlassesCNN(ZooModel):
    """conv32, pool, conv64, pool, conv64 (3x3 valid), flatten, dense N."""

    def __init__(self, num_classes: int, in_channels: int, input_size: tuple[int, int]):
        super().__init__()
        self.features = nn.Sequential(
            conv_relu(in_channels, 32), nn.MaxPool2d(2),
            conv_relu(32, 64), nn.MaxPool2d(2),
            conv_relu(64, 64),
        )
        flat = flat_size(self.features, "glasses-cnn", in_channels, input_size)
        self.pre_logits = nn.Sequential(OrderedDict(flatten=nn.Flatten()))
        self.classifier = nn.Linear(flat, num_classes)
        self._finish()


class GlassesDeepCNN(ZooModel):
    """conv 32/64/128/128 (3x3 valid) each + pool, dropout 0.5, dense128, dense64, dense N."""

    embedding_layers = ("dense1", "dense2", "pre_logits")

    def __init__(self, num_classes: int, in_channels: int, input_size: tuple[int, int],
                 dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for filters in (32, 64, 128, 128):
            layers += [conv_relu(cin, filters), nn.MaxPool2d(2)]
            cin = filters
        self.features = nn.Sequential(*layers)
        flat = flat_size(self.features, "glasses-cnn-deep", in_channels, input_size)
        self.pre_logits = nn.Sequential(OrderedDict(
            flatten=nn.Flatten(), drop=nn.Dropout(dropout),
            dense1=dense(flat, 128), dense2=dense(128, 64),
        ))
        self.classifier = nn.Linear(64, num_classes)
        self._finish()


@register_model("glasses-cnn", input_size=(160, 160), in_channels=3, num_classes=2)
def glasses_cnn(num_classes: int, in_channels: int, input_size: tuple[int, int]) -> GlassesCNN:
    """Glasses report CNN: 3x3 valid convs 32/64/64 with two max poolings, dense N."""
    return GlassesCNN(num_classes, in_channels, input_size)


@register_model(
    "glasses-cnn-deep", input_size=(160, 160), in_channels=3, num_classes=1, loss="bce"
)
def glasses_cnn_deep(num_classes: int, in_channels: int, input_size: tuple[int, int],
                     dropout: float = 0.5) -> GlassesDeepCNN:
    """Deeper glasses CNN: 3x3 convs 32/64/128/128 each pooled, dense128-64, one sigmoid output."""
    return GlassesDeepCNN(num_classes, in_channels, input_size, dropout)
