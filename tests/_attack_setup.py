"""The small setting of the attack tests: a random ReLU MLP with O(1) logit differences, inputs labelled
by it, and the attacks' fast options."""

from __future__ import annotations

import torch
from torch import nn

FAST = {
    "pgd": {"steps": 5},
    "apgd": {"n_iter": 8},
    "wda": {"steps": 4, "probe_steps": 2, "radii": 3},
    "wda++": {"max_steps": 8, "bisection": 4},
    "a3": {"restarts": 2, "n_iter": 5},
    "a3-wda": {"restarts": 2, "n_iter": 5, "steps": 3, "radii": 3},
    "w-pgd": {"steps": 6},
}


def tiny(k: int = 4, d: int = 12, seed: int = 0) -> nn.Module:
    """A random ReLU MLP with O(1) logit differences (so the attacks have boundaries to find)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, k))
    with torch.no_grad():
        for layer in (model[0], model[3]):
            layer.weight.mul_(4.0)
    return model


def data(n: int = 20, d: int = 12, k: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform inputs labelled by tiny(k, d) itself, every fourth label moved to the next class."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    with torch.no_grad():
        y = tiny(k, d).eval()(x).argmax(1)
    y[::4] = (y[::4] + 1) % k
    return x, y
