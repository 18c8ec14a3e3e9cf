"""A small convolutional network for 8x8, 28x28 and 32x32 inputs (1 or 3 channels)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from wdrobust.nets.layers import make_activation, normalize_layer


def _halved(size: int) -> int:
    """Output size of a 4x4 convolution with stride 2 and padding 1: floor(size / 2)."""
    return (size + 2 - 4) // 2 + 1


class SmallCNN(nn.Sequential):
    """conv3x3(w1) s conv4x4/2(w1) s conv3x3(w2) s conv4x4/2(w2) s flatten linear(hidden) s linear(K).

    Downsampling uses strided convolutions (no pooling), so the net is convolutions, affine maps and
    activations only. An H x W input ends at (H // 4) x (W // 4) before the dense layers; input
    (N, C, H, W) -> logits (N, num_classes).
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 8, 8),
        num_classes: int = 10,
        widths: Sequence[int] = (32, 64),
        hidden: int = 128,
        activation: str = "relu",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"cnn needs image inputs (C, H, W), got input shape {tuple(input_shape)}")
        if len(widths) != 2:
            raise ValueError(f"cnn takes two channel widths, got {list(widths)}")
        channels, height, width = (int(s) for s in input_shape)
        if min(height, width) < 4:
            raise ValueError(f"cnn needs inputs of at least 4x4 pixels, got {height}x{width}")
        w1, w2 = (int(w) for w in widths)
        layers: list[nn.Module] = []
        norm = normalize_layer(mean, std)
        if norm is not None:
            layers.append(norm)
        layers += [
            nn.Conv2d(channels, w1, 3, padding=1),
            make_activation(activation),
            nn.Conv2d(w1, w1, 4, stride=2, padding=1),
            make_activation(activation),
            nn.Conv2d(w1, w2, 3, padding=1),
            make_activation(activation),
            nn.Conv2d(w2, w2, 4, stride=2, padding=1),
            make_activation(activation),
            nn.Flatten(),
            nn.Linear(w2 * _halved(_halved(height)) * _halved(_halved(width)), hidden),
            make_activation(activation),
            nn.Linear(hidden, num_classes),
        ]
        super().__init__(*layers)
