"""Tiny transformers for the brute-force soundness tests: vit_tiny on 2-pixel inputs (two tokens of
dimension 2 plus the class token, one head, one block), with random or briefly trained weights."""

from __future__ import annotations

import torch
from torch import nn

from wdrobust import nets

#: Input shape of the tiny ViT: one channel, 2 x 1 pixels, patch 1 -> two tokens.
SHAPE = (1, 2, 1)


def tiny_vit(seed: int, trained: bool = False, activation: str = "gelu", scale: float = 1.0) -> nn.Module:
    """vit_tiny with dim 2, one head, one block, 3 classes on inputs (N, 1, 2, 1), in float64.

    Random: every parameter drawn N(0, scale^2) (LayerNorm gains around 1). Trained: 120 Adam steps of
    cross-entropy on 256 points of [0,1]^2 labelled by the nearest of three fixed centres."""
    torch.manual_seed(seed)
    model = nets.build(
        "vit_tiny", input_shape=SHAPE, num_classes=3, patch=1, dim=2, depth=1, heads=1, activation=activation
    ).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype) * scale
            p.copy_(1.0 + 0.3 * noise if "norm" in name and name.endswith("weight") else noise)
    if trained:
        x = torch.rand(256, 2, generator=g, dtype=torch.float64)
        centres = torch.tensor([[0.2, 0.2], [0.8, 0.3], [0.4, 0.9]], dtype=torch.float64)
        y = torch.cdist(x, centres).argmin(dim=1)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(120):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x.reshape(-1, *SHAPE)), y).backward()
            opt.step()
    return model.eval().requires_grad_(False)


class Flat(nn.Module):
    """A model on flat inputs (N, 2) -> the tiny ViT on (N, 1, 2, 1)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.reshape(x.shape[0], *SHAPE))
