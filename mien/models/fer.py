"""fer-a ... fer-g: the seven plain CNNs compared on FER2013 in the expression reports.

Three groups of 3x3 'same' convolutions (32, 64, 128 filters), each group closed by a 2x2
pooling, then dense64, dense64, dense N. No batch normalisation: the reports' parameter counts
(392,263 / 779,783 / 918,119 at 48x48x1, 7 classes) leave no room for it.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from mien.models.base import ZooModel, conv_relu, dense, flat_size
from mien.models.registry import register_model

_FILTERS = (32, 64, 128)

# name: (convolutions per group, pooling per group, loss, last-layer L2)
_VARIANTS = {
    "a": ((1, 1, 1), ("max", "max", "max"), "cross_entropy", 0.0),
    "b": ((3, 3, 3), ("max", "max", "max"), "cross_entropy", 0.0),
    "c": ((2, 3, 4), ("max", "max", "max"), "cross_entropy", 0.0),
    "d": ((2, 3, 4), ("avg", "avg", "avg"), "cross_entropy", 0.0),
    "e": ((2, 3, 4), ("max", "max", "avg"), "cross_entropy", 0.0),
    "f": ((3, 3, 3), ("avg", "avg", "avg"), "squared_hinge", 1e-4),
    "g": ((2, 3, 4), ("avg", "avg", "avg"), "squared_hinge", 1e-4),
}


class FerCNN(ZooModel):
    embedding_layers = ("dense1", "dense2", "pre_logits")

    def __init__(
        self,
        variant: str,
        num_classes: int,
        in_channels: int,
        input_size: tuple[int, int],
    ):
        super().__init__()
        convs, pools, _, _ = _VARIANTS[variant]
        layers: list[nn.Module] = []
        cin = in_channels
        for n, filters, pool in zip(convs, _FILTERS, pools, strict=True):
            for _ in range(n):
                layers.append(conv_relu(cin, filters, padding=1))
                cin = filters
            layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
        self.features = nn.Sequential(*layers)
        flat = flat_size(self.features, f"fer-{variant}", in_channels, input_size)
        self.pre_logits = nn.Sequential(
            OrderedDict(flatten=nn.Flatten(), dense1=dense(flat, 64), dense2=dense(64, 64))
        )
        self.classifier = nn.Linear(64, num_classes)
        self._finish()


def _register(variant: str) -> None:
    convs, pools, loss, l2 = _VARIANTS[variant]
    pooling = "/".join(pools)
    description = (
        f"FER report CNN {variant.upper()}: {'+'.join(map(str, convs))} 3x3 convs "
        f"(32/64/128), {pooling} pooling, dense64-64" + (", squared hinge" if l2 else "")
    )

    @register_model(
        f"fer-{variant}", input_size=(48, 48), in_channels=1, num_classes=7, loss=loss,
        last_layer_l2=l2, description=description,
    )
    def build(num_classes: int, in_channels: int, input_size: tuple[int, int]) -> FerCNN:
        return FerCNN(variant, num_classes, in_channels, input_size)


for _variant in _VARIANTS:
    _register(_variant)
