"""Attack engine fast paths: row-wise best tracking, fused steps, cached linf bounds, float32 distances."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wdrobust.attacks._engine import (
    Batch,
    Passes,
    Recorder,
    improve_,
    keep_best,
    move,
    safe_radius,
    stacked_losses,
)
from wdrobust.attacks.budget import Budget
from wdrobust.losses import LOSSES, loss_fn
from wdrobust.threat import ThreatModel, lp_norm


def where_rows(better: torch.Tensor, x: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
    """Reference: rows of x where better, else rows of best."""
    return torch.where(better.reshape(-1, *([1] * (x.dim() - 1))), x, best)


@pytest.mark.parametrize("case", ["all", "none", "some"])
def test_keep_best_and_improve_match_the_row_wise_where(case: str) -> None:
    g = torch.Generator().manual_seed(0)
    best_x, x = torch.rand(6, 2, 3, generator=g), torch.rand(6, 2, 3, generator=g)
    best_v = torch.zeros(6)
    v = {"all": torch.ones(6), "none": -torch.ones(6), "some": torch.tensor([1.0, -1, 1, -1, -1, 1])}[case]
    better = v > best_v
    out_x, out_v = keep_best(best_x, best_v, x, v)
    assert torch.equal(out_x, where_rows(better, x, best_x)) and torch.equal(out_v, torch.maximum(v, best_v))
    if case == "all":
        assert out_x is x  # no copy when every row improved
    owned = best_x.clone()
    assert improve_(owned, x, better) is owned
    assert torch.equal(owned, where_rows(better, x, best_x))


def test_move_is_the_per_sample_step() -> None:
    g = torch.Generator().manual_seed(1)
    x, u, eta = (
        torch.rand(5, 3, 4, generator=g),
        torch.randn(5, 3, 4, generator=g),
        torch.rand(5, generator=g),
    )
    assert torch.allclose(move(x, eta, u), x + eta[:, None, None] * u, atol=1e-7)
    s = torch.sign(u)  # sign steps: eta * s is exact, so the fused step equals the two-op one bit for bit
    assert torch.equal(move(x, eta, s), x + eta[:, None, None] * s)


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


@pytest.mark.parametrize("k", [2, 3, 10, 40])
def test_stacked_losses_equal_loss_fn_ties_included(k: int) -> None:
    g = torch.Generator().manual_seed(5)
    z = torch.randn(7, 40, k, generator=g).round(decimals=0)  # integer logits: many ties
    y = torch.randint(0, k, (40,), generator=g)
    got = stacked_losses(z.transpose(1, 2), y, LOSSES)
    assert set(got) == {n for n in LOSSES if not (n == "dlr" and k < 3)}
    for name, value in got.items():
        want = torch.stack([loss_fn(name, zs, y) for zs in z])
        if name == "ce":
            assert torch.allclose(value, want, rtol=1e-6, atol=1e-6)
        else:
            assert torch.equal(value, want), name
