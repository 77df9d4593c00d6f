"""expression-cnn: the three-block CNN of the expression report (48x48 gray, 7 classes)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from mien.models.base import ZooModel, conv_relu, dense, flat_size
from mien.models.registry import register_model


class ExpressionCNN(ZooModel):
    """conv 64/128/256 3x3 pad 1, each + maxpool 2; dropout 0.2, dense1024, dense N."""

    embedding_layers = ("dense1", "pre_logits")

    def __init__(self, num_classes: int, in_channels: int, input_size: tuple[int, int],
                 dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for filters in (64, 128, 256):
            layers += [conv_relu(cin, filters, padding=1), nn.MaxPool2d(2)]
            cin = filters
        self.features = nn.Sequential(*layers)
        flat = flat_size(self.features, "expression-cnn", in_channels, input_size)
        self.pre_logits = nn.Sequential(
            OrderedDict(flatten=nn.Flatten(), drop=nn.Dropout(dropout), dense1=dense(flat, 1024))
        )
        self.classifier = nn.Linear(1024, num_classes)
        self._finish()


@register_model("expression-cnn", input_size=(48, 48), in_channels=1, num_classes=7)
def expression_cnn(num_classes: int, in_channels: int, input_size: tuple[int, int],
                   dropout: float = 0.2) -> ExpressionCNN:
    """Expression report CNN: 3x3 convs 64/128/256 with max pooling, dropout 0.2, dense1024."""
    return ExpressionCNN(num_classes, in_channels, input_size, dropout)
