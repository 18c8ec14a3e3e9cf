"""CIFAR ResNet-18 and PreAct ResNet-18 as used in the adversarial-robustness literature.

Module names follow the published checkpoints so that their state_dicts load key for key:
``resnet18`` the ResNet-18 of AutoAttack's example checkpoint (conv1, bn1, layer1..4 of BasicBlocks with
conv1/bn1/conv2/bn2/shortcut, linear), ``preact_resnet18`` the PreAct ResNet-18 of fast adversarial training
(conv1, layer1..4 of PreActBlocks with bn1/conv1/bn2/conv2/shortcut, bn, linear). Activations are separate
modules without parameters, so swapping relu for silu keeps the keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from wdrobust.nets.layers import conv3x3, downsampled, make_activation, normalize_layer

_WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """y = s(bn2(conv2(s(bn1(conv1(x))))) + shortcut(x)); shortcut = 1x1 conv + bn when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int, activation: str) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = make_activation(activation)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act2 = make_activation(activation)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.act2(out + skip)


class PreActBlock(nn.Module):
    """Pre-activation block. a = s(bn1(x)); y = conv2(s(bn2(conv1(a)))) + skip, where skip = x when the
    shape is kept and the strided 1x1 convolution shortcut(a) when it changes."""

    def __init__(self, cin: int, cout: int, stride: int, activation: str) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.act1 = make_activation(activation)
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act2 = make_activation(activation)
        self.conv2 = conv3x3(cout, cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.act1(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(a)
        return self.conv2(self.act2(self.bn2(self.conv1(a)))) + skip


class ResNet(nn.Module):
    """ResNet-18 layout: 3x3 stem (64), four stages of two blocks (64, 128, 256, 512; stride 1, 2, 2, 2),
    global average pooling and a linear head. ``preact`` selects PreActBlocks with a final bn + activation
    (keys conv1, layer*, bn, linear) instead of BasicBlocks with a stem bn + activation (conv1, bn1,
    layer*, linear). Input (N, C, H, W) -> logits (N, num_classes).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        activation: str,
        preact: bool,
        mean: Sequence[float] | None,
        std: Sequence[float] | None,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"resnets need image inputs (C, H, W), got input shape {tuple(input_shape)}")
        channels, height, width = (int(s) for s in input_shape)
        self.normalize = normalize_layer(mean, std)
        self.conv1 = conv3x3(channels, _WIDTHS[0])
        if not preact:
            self.bn1 = nn.BatchNorm2d(_WIDTHS[0])
            self.act1 = make_activation(activation)
        block = PreActBlock if preact else BasicBlock
        cin = _WIDTHS[0]
        for i, cout in enumerate(_WIDTHS):
            stride = 1 if i == 0 else 2
            stage = nn.Sequential(block(cin, cout, stride, activation), block(cout, cout, 1, activation))
            self.add_module(f"layer{i + 1}", stage)
            cin = cout
        if preact:
            self.bn = nn.BatchNorm2d(cin)
            self.act = make_activation(activation)
        self.preact = preact
        self.pool = nn.AvgPool2d((downsampled(height, 3), downsampled(width, 3)))
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize is not None:
            x = self.normalize(x)
        out = self.conv1(x)
        if not self.preact:
            out = self.act1(self.bn1(out))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        if self.preact:
            out = self.act(self.bn(out))
        return self.linear(self.flatten(self.pool(out)))


def resnet18(
    input_shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
    activation: str = "relu",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ResNet:
    """CIFAR ResNet-18 (BasicBlocks; AutoAttack example checkpoint layout)."""
    return ResNet(input_shape, num_classes, activation, False, mean, std)


def preact_resnet18(
    input_shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
    activation: str = "relu",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ResNet:
    """CIFAR PreAct ResNet-18 (PreActBlocks; fast adversarial training checkpoint layout)."""
    return ResNet(input_shape, num_classes, activation, True, mean, std)
