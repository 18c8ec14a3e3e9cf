"""Losses from logits: definitions, Lipschitz constants in logit space and from margin constants."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from wdrobust.losses import (
    LOSSES,
    all_losses,
    lipschitz_from_margins,
    logit_lipschitz,
    loss_cap,
    loss_fn,
    margins,
    max_other,
)
from wdrobust.threat import dual_of, lp_norm


def test_definitions_match_formulas() -> None:
    z = torch.tensor([[2.0, 1.0, -1.0, 0.5], [0.0, 3.0, 1.0, 2.5]])
    y = torch.tensor([0, 2])
    assert torch.allclose(loss_fn("ce", z, y), -F.log_softmax(z, 1)[[0, 1], y])
    assert torch.allclose(loss_fn("margin", z, y), torch.tensor([1.0 - 2.0, 3.0 - 1.0]))
    assert torch.equal(loss_fn("zero_one", z, y), torch.tensor([0.0, 1.0]))
    dlr = -(torch.tensor([2.0, 1.0]) - torch.tensor([1.0, 3.0])) / torch.tensor([2.0 - 0.5, 3.0 - 1.0])
    assert torch.allclose(loss_fn("dlr", z, y), dlr)
    assert torch.equal(margins(z, y)[0], z[0] - 2.0)
    assert torch.equal(max_other(z, y), torch.tensor([1.0, 3.0]))
    assert set(all_losses(z, y)) == set(LOSSES)
    assert "dlr" not in all_losses(z[:, :2], y.clamp(max=1))


def test_bad_losses_raise() -> None:
    z, y = torch.zeros(2, 2), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="at least 3 classes"):
        loss_fn("dlr", z, y)
    with pytest.raises(ValueError, match="unknown loss"):
        loss_fn("hinge", z, y)
    with pytest.raises(ValueError, match="unknown norm"):
        logit_lipschitz("ce", "l7")


def test_caps() -> None:
    assert loss_cap("zero_one") == 1.0
    assert loss_cap("ce") == math.inf


@pytest.mark.parametrize("name", ["ce", "margin"])
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_logit_lipschitz_bounds_gradients(name: str, norm: str) -> None:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(4000, 5, generator=gen) * torch.tensor([0.1, 1.0, 10.0, 30.0, 100.0]).repeat(800)[:, None]
    z = z.requires_grad_(True)
    y = torch.randint(0, 5, (4000,), generator=gen)
    loss_fn(name, z, y).sum().backward()
    grad_norm = lp_norm(z.grad, dual_of(norm))
    bound = logit_lipschitz(name, norm)
    assert (grad_norm <= bound + 1e-6).all()
    assert grad_norm.max() >= 0.95 * bound  # nearly attained
    assert math.isinf(logit_lipschitz("zero_one", norm))


@pytest.mark.parametrize("name", ["ce", "margin"])
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_lipschitz_from_margins_bounds_input_gradients(name: str, norm: str) -> None:
    """For a linear model z = W x, grad m_j = W_j - W_y exactly, so L_ij = ||W_j - W_y||_*."""
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    x = torch.randn(500, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (500,), generator=gen)
    loss_fn(name, x @ w.T, y).sum().backward()
    diffs = w[None, :, :] - w[y][:, None, :]  # (N, K, d)
    lip = lp_norm(diffs.reshape(-1, 6), dual_of(norm)).reshape(500, 4)
    bound = lipschitz_from_margins(name, lip, y)
    assert (lp_norm(x.grad, dual_of(norm)) <= bound + 1e-9).all()
    assert torch.isinf(lipschitz_from_margins("zero_one", lip, y)).all()
