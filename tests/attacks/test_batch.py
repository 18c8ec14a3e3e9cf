"""attacks/batch.py: the linf projection by cached bounds equals the threat's projection, for row subsets."""

from __future__ import annotations

import torch
from torch import nn

from wdrobust.attacks.batch import Batch
from wdrobust.attacks.budget import Budget
from wdrobust.attacks.passes import Passes
from wdrobust.attacks.steps import safe_radius
from wdrobust.threat import ThreatModel, lp_norm


def batch_of(norm: str, n: int = 8, d: int = 10) -> Batch:
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(n, d, generator=g)
    x0[0, :3] = torch.tensor([0.0, 1.0, 0.5])
    model = nn.Linear(d, 3)
    y = torch.zeros(n, dtype=torch.int64)
    threat = ThreatModel(norm, 0.1)
    return Batch(model, threat, x0, y, losses=("ce",), passes=Passes(), generator=g, budget=Budget(threat, n))


def test_linf_projection_by_cached_bounds_for_row_subsets() -> None:
    batch = batch_of("linf")
    g = torch.Generator().manual_seed(3)
    for rows in (batch.all, torch.tensor([0, 3, 3, 5]), torch.tensor([1, 0])):  # new rows: new bounds
        for radius in (0.1, 0.3):
            x = torch.rand(rows.shape[0], batch.x0.shape[1], generator=g)
            p = batch.project(x, rows, radius)
            x0 = batch.x0[rows]
            ref = ThreatModel("linf", radius).project(x, x0, safe_radius(torch.tensor(radius)))
            assert torch.allclose(p, ref, atol=1e-7)
            assert p.min() >= 0 and p.max() <= 1
            assert lp_norm(p.double() - x0.double(), "linf").max() <= radius
