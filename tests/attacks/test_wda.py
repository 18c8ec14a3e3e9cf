"""attacks/wda.py: the radius schedule's cost at p < inf, ``steps`` gradients at eps and ``warm_steps`` at
each warm-started radius, and p = inf unchanged (one radius, ``steps`` gradients)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from wdrobust.attacks.wda import WDA
from wdrobust.threat import ThreatModel

N, D = 8, 6


@pytest.mark.parametrize(("p", "steps", "radii"), [(2.0, 20, 12), (1.0, 7, 4), (math.inf, 20, 12)])
def test_passes_of_the_radius_schedule(p: float, steps: int, radii: int) -> None:
    """Two classes (k capped at 1: no probe) and no whole-box search: the passes are the ascent's alone."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, 2)).eval()
    x = torch.rand(N, D, generator=torch.Generator().manual_seed(1))
    y = torch.zeros(N, dtype=torch.int64)
    attack = WDA(model, ThreatModel("linf", 0.1, p), steps=steps, radii=radii, whole_box=0)
    assert attack.warm_steps == math.ceil(steps / 4)
    result = attack.run(x, y)
    count = 1 if math.isinf(p) else radii
    gradients = steps + (count - 1) * attack.warm_steps
    assert result.backward_passes == N * gradients
    assert result.forward_passes == N * (1 + gradients + count)  # clean, gradients, last iterate per radius
