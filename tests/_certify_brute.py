"""Brute-force references for the certificate tests: tiny random nets and dense grids over [0,1]^2."""

from __future__ import annotations

import torch
from torch import nn

from wdrobust.nets.gradients import margin_gradients
from wdrobust.threat import lp_norm


def tiny_mlp(
    seed: int, widths=(8, 8), activation: type[nn.Module] = nn.ReLU, d: int = 2, k: int = 3
) -> nn.Sequential:
    """A random MLP R^d -> R^k with the given hidden widths, float32, eval mode."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    fan = d
    for w in widths:
        layers += [nn.Linear(fan, w), activation()]
        fan = w
    layers.append(nn.Linear(fan, k))
    return nn.Sequential(*layers).eval()


def grid(n: int = 201, d: int = 2) -> torch.Tensor:
    """All points of a regular n^d grid over [0,1]^d, shape (n^d, d)."""
    axes = torch.linspace(0, 1, n)
    return torch.stack(torch.meshgrid(*[axes] * d, indexing="ij"), dim=-1).reshape(-1, d)


def pair_gradient_norms(model: nn.Module, points: torch.Tensor, dual: str) -> torch.Tensor:
    """||grad (z_j - z_y)(x)||_dual at every point, shape (K, G, K) indexed [y, point, j]."""
    k = model(points[:1]).shape[1]
    out = []
    for y in range(k):
        _, g = margin_gradients(model, points, torch.full((points.shape[0],), y, dtype=torch.long))
        out.append(lp_norm(g.reshape(-1, g.shape[-1]), dual).reshape(points.shape[0], k))
    return torch.stack(out)
