"""Building blocks shared by the architectures: activations as modules and input normalisation.

Activations are nn.Module instances (never functional calls) and never in-place, so that a torch.fx
trace shows every nonlinearity as a ``call_module`` node the certificates can recognise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: Activation name -> module class (default constructor arguments).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
}


def check_activation(name: str) -> str:
    """Return name if it is a known activation, else raise ValueError naming the choices."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: expected one of {', '.join(ACTIVATIONS)}")
    return name


def make_activation(name: str) -> nn.Module:
    """A fresh activation module (not in-place): relu, leaky_relu (slope 0.01), gelu, silu or elu."""
    return ACTIVATIONS[check_activation(name)]()


class Normalize(nn.Module):
    """Per-channel input normalisation (x - mean) / std as the first layer of a network.

    x: (N, C, *spatial) or (N, F) with C = len(mean) channels (or features). mean and std are
    non-persistent buffers of shape (1, C, 1, ..., 1): they are rebuilt from the model's kwargs and never
    appear in a state_dict, so published checkpoints without a normalisation layer load key for key.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], ndim: int = 4) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"Normalize: mean has {len(mean)} entries but std has {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"Normalize: std must be positive, got {list(std)}")
        shape = (1, len(mean)) + (1,) * (ndim - 2)
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).reshape(shape), False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).reshape(shape), False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def normalize_layer(
    mean: Sequence[float] | None, std: Sequence[float] | None, ndim: int = 4
) -> Normalize | None:
    """A Normalize layer when mean and std are given, None when both are None."""
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ValueError("give both mean and std for input normalisation, or neither")
    return Normalize(mean, std, ndim)


def normalized(model: nn.Module, mean: Sequence[float], std: Sequence[float], ndim: int = 4) -> nn.Module:
    """nn.Sequential(Normalize(mean, std, ndim), model): a model trained on inputs (x - mean) / std made a
    model of x in [0, 1] (what every attack and certificate expects); ndim = 1 + the sample's ndim."""
    return nn.Sequential(Normalize(mean, std, ndim), model)


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (the residual networks' convolution)."""
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def downsampled(size: int, times: int) -> int:
    """Spatial size after ``times`` stride-2 3x3 convolutions with padding 1: ceil(size / 2) each time."""
    for _ in range(times):
        size = (size + 1) // 2
    return size
