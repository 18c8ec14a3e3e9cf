"""Wide ResNets WRN-depth-k (Zagoruyko & Komodakis) in the layout of the robustness literature.

Module names follow the WideResNet checkpoints of TRADES / RobustBench (conv1, block1..3 with a ``layer``
of pre-activation blocks bn1/conv1/bn2/conv2, bn1, fc); their 1x1 shortcut ``convShortcut`` is stored
here as ``shortcut.0`` (the PreActBlock of resnet.py) and renamed on loading, so those state_dicts load.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from wdrobust.nets.layers import conv3x3, downsampled, make_activation, normalize_layer
from wdrobust.nets.resnet import PreActBlock


def _rename_shortcuts(state_dict: dict[str, torch.Tensor], prefix: str, *args: object) -> None:
    """Load-time hook: rename TRADES / RobustBench keys ``*.convShortcut.*`` to ``*.shortcut.0.*``."""
    for key in [k for k in state_dict if k.startswith(prefix) and ".convShortcut." in k]:
        state_dict[key.replace(".convShortcut.", ".shortcut.0.")] = state_dict.pop(key)


class WideStage(nn.Module):
    """``n`` PreActBlocks in ``self.layer``; the first one changes width and applies the stride."""

    def __init__(self, n: int, cin: int, cout: int, stride: int, activation: str) -> None:
        super().__init__()
        blocks = [
            PreActBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1, activation) for i in range(n)
        ]
        self.layer = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-depth-k: stem conv (16), three stages of (depth - 4) / 6 blocks with widths 16k, 32k, 64k and
    strides 1, 2, 2, final bn + activation, global average pooling, linear head ``fc``.
    Input (N, C, H, W) -> logits (N, num_classes).
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (3, 32, 32),
        num_classes: int = 10,
        depth: int = 28,
        widen_factor: int = 10,
        activation: str = "relu",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"wide_resnet needs image inputs (C, H, W), got {tuple(input_shape)}")
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(
                f"wide_resnet depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), got {depth}"
            )
        if widen_factor < 1:
            raise ValueError(f"wide_resnet widen_factor must be >= 1, got {widen_factor}")
        channels, height, width = (int(s) for s in input_shape)
        n = (depth - 4) // 6
        widths = (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.normalize = normalize_layer(mean, std)
        self.conv1 = conv3x3(channels, widths[0])
        self.block1 = WideStage(n, widths[0], widths[1], 1, activation)
        self.block2 = WideStage(n, widths[1], widths[2], 2, activation)
        self.block3 = WideStage(n, widths[2], widths[3], 2, activation)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = make_activation(activation)
        self.pool = nn.AvgPool2d((downsampled(height, 2), downsampled(width, 2)))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(widths[3], num_classes)

        self._register_load_state_dict_pre_hook(_rename_shortcuts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize is not None:
            x = self.normalize(x)
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(self.flatten(self.pool(self.relu(self.bn1(out)))))
