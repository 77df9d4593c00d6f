"""smile-autoencoder: the convolutional autoencoder of the SMILEs anomaly-detection report."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from mien.errors import MienError
from mien.models.base import check_embedding_layer, init_weights
from mien.models.registry import register_model


class ConvAutoencoder(nn.Module):
    """conv32 5x5, pool, conv16 5x5, pool | up, conv16 5x5, up, conv32 5x5, conv C 3x3 linear.

    Same interface as the classifiers where it makes sense: `forward_features` is the encoder,
    `forward_head` the decoder, `embed` the flattened bottleneck (for anomaly scores and heads).
    """

    task = "autoencoder"
    embedding_layers = ("bottleneck", "pre_logits")

    def __init__(self, in_channels: int, input_size: tuple[int, int]):
        super().__init__()
        if input_size[0] % 4 or input_size[1] % 4:
            raise MienError(
                f"model 'smile-autoencoder': input_size {input_size} must be divisible by 4 "
                "(two 2x poolings, then two 2x upsamplings back to the input size)"
            )
        relu = nn.ReLU
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2), relu(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 16, 5, padding=2), relu(inplace=True), nn.MaxPool2d(2),
        )
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(16, 16, 5, padding=2), relu(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(16, 32, 5, padding=2), relu(inplace=True),
            nn.Conv2d(32, in_channels, 3, padding=1),
        )
        self.apply(init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward_head(self, feats: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return feats.flatten(1) if pre_logits else self.decoder(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of `x`, same shape."""
        return self.decoder(self.encoder(x))

    def embed(self, x: torch.Tensor, layer: str = "pre_logits") -> torch.Tensor:
        check_embedding_layer(self, layer)
        return self.encoder(x).flatten(1)

    def reset_head(self, num_classes: int) -> None:
        raise MienError(
            "smile-autoencoder has no classification head: train a head on its embeddings instead"
        )

    def head_parameters(self) -> Iterator[nn.Parameter]:
        return self.decoder.parameters()

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        return self.encoder.parameters()


@register_model(
    "smile-autoencoder", input_size=(64, 64), in_channels=3, num_classes=0, loss="mse",
    task="autoencoder",
)
def smile_autoencoder(
    num_classes: int, in_channels: int, input_size: tuple[int, int]
) -> ConvAutoencoder:
    """Convolutional autoencoder (5x5 convs 32/16, 'same' padding); reconstructs its input."""
    return ConvAutoencoder(in_channels, input_size)
