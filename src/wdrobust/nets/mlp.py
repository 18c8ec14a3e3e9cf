"""Fully connected networks: Flatten, then Linear -> activation blocks, then a Linear head."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from wdrobust.nets.layers import make_activation, normalize_layer


class MLP(nn.Sequential):
    """f(x) = W_L s(... s(W_1 flatten(x) + b_1) ...) + b_L with activation s.

    input_shape: shape of one sample, e.g. (1, 8, 8) or (F,); the input (N, *input_shape) is flattened
    to (N, d). widths: hidden layer widths (empty for a linear model); activation s: relu, leaky_relu,
    gelu, silu or elu; mean/std: optional input normalisation. Output: logits (N, num_classes).
    Children (in order): optional Normalize, Flatten, then Linear/activation pairs, then the Linear head.
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 8, 8),
        num_classes: int = 10,
        widths: Sequence[int] = (128, 64),
        activation: str = "relu",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        layers: list[nn.Module] = []
        norm = normalize_layer(mean, std, ndim=len(input_shape) + 1)
        if norm is not None:
            layers.append(norm)
        layers.append(nn.Flatten())
        fan_in = math.prod(input_shape)
        for width in widths:
            layers += [nn.Linear(fan_in, int(width)), make_activation(activation)]
            fan_in = int(width)
        layers.append(nn.Linear(fan_in, num_classes))
        super().__init__(*layers)
