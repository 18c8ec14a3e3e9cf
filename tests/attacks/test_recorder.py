"""attacks/recorder.py: float32 distances are never below the exact ones (and within 2e-6 of them)."""

from __future__ import annotations

import pytest
import torch

from wdrobust.attacks.recorder import Recorder
from wdrobust.threat import lp_norm


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_float32_distances_are_never_below_the_exact_ones(norm: str) -> None:
    g = torch.Generator().manual_seed(4)
    n, d = 64, 3 * 32 * 32
    x0 = torch.rand(n, d, generator=g)
    scale = torch.logspace(-7, 0, n)[:, None]  # tiny to large differences: rounding of x - x0 matters
    x = (x0 + scale * torch.randn(n, d, generator=g)).clamp(0.0, 1.0)
    rec = Recorder(x0, torch.zeros(n, dtype=torch.int64), torch.zeros(n, 2), norm, ("ce",))
    got = rec.distance(x, slice(None))
    exact = lp_norm(x.double() - x0.double(), norm)
    assert got.dtype == torch.float64
    assert torch.all(got >= exact) and torch.all(got <= exact * (1 + 2e-6))
    rows = torch.tensor([5, 5, 9])
    sub = rec.distance(x[rows], rows)
    assert torch.equal(sub, got[rows]) and torch.equal(rec.origin(rows), x0[rows])
