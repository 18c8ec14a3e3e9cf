"""Soundness of the bound engine on random tiny networks, checked against brute force.

(a) L_ij(r) >= max ||grad m_j(p)||_* over dense grids of the region B(x, r) cap [0,1]^d, boundary
included. For ReLU/LeakyReLU networks the gradient at a point is its activation pattern's Jacobian
J_pattern^T c, so the grid maximum is the maximum over every activation cell the grid meets; for smooth
activations it is a dense sample of a continuous function. 5 activations x 3 norms x 12 seeds, each
with several centres and radii.
"""

from __future__ import annotations

import math

import pytest
import torch
from _certify_brute import ACTS, region_points, tiny_net
from torch import nn

from wdrobust.certify.bounds import BoundGraph, margin_lipschitz, margin_upper_rows
from wdrobust.certify.bounds.activations import (
    GELU,
    GELU_DERIV_CRIT,
    GELU_MIN,
    SIGMOID,
    SILU,
    SILU_DERIV_CRIT,
    SILU_MIN,
    TANH,
    _gelu_deriv,
    _silu_deriv,
    bound_activation,
    elu,
    piecewise_linear,
)
from wdrobust.certify.bounds.interval import Box
from wdrobust.nets.gradients import margin_gradients
from wdrobust.threat import dual_of, lp_norm


def max_gradient_norm(net: nn.Module, pts: torch.Tensor, y: int, norm: str) -> torch.Tensor:
    """max over points of ||grad m_j||_* per class j, shape (K,)."""
    _, g = margin_gradients(net, pts, torch.full((pts.shape[0],), y, dtype=torch.long))
    return lp_norm(g.reshape(-1, g.shape[-1]), dual_of(norm)).reshape(g.shape[:2]).amax(dim=0)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("act", list(ACTS))
def test_lipschitz_bound_dominates_grid(act: str, norm: str) -> None:
    cases = 0
    for seed in range(12):
        d = 2 + seed % 2
        net = tiny_net(seed, d, act)
        g = torch.Generator().manual_seed(100 + seed)
        x = torch.rand(3, d, generator=g, dtype=torch.float64)
        x[0, 0] = 0.0  # a centre on the boundary of the box
        y = torch.randint(0, 3, (3,), generator=g)
        radii = [0.03, 0.15, 0.6]
        lip = margin_lipschitz(net, x, y, radii, norm, device="cpu")
        assert torch.isfinite(lip).all()
        assert (lip.gather(1, y[:, None, None].expand(3, 1, 3)) == 0).all()
        for i in range(3):
            for m, r in enumerate(radii):
                pts = region_points(x[i], r, norm, 31 if d == 2 else 11)
                truth = max_gradient_norm(net, pts, int(y[i]), norm)
                assert (truth <= lip[i, :, m] * (1 + 1e-9) + 1e-12).all(), (seed, i, r, truth, lip[i, :, m])
                cases += 1
    assert cases == 12 * 3 * 3


def test_lipschitz_grows_with_radius_and_is_tight_at_small_radius() -> None:
    net = tiny_net(3, 2, "relu")
    x = torch.tensor([[0.4, 0.6]], dtype=torch.float64)
    y = torch.tensor([0])
    lip = margin_lipschitz(net, x, y, [1e-6, 0.1, 0.5, 1.0], "linf", device="cpu")[0]
    assert (lip[:, 1:] >= lip[:, :-1] - 1e-12).all()
    _, g = margin_gradients(net, x, y)
    # a tiny region is inside one cell: the bound is the exact gradient norm there
    torch.testing.assert_close(lip[:, 0], g[0].abs().sum(dim=1), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_margin_upper_bound_dominates_grid(norm: str) -> None:
    for seed in range(10):
        net = tiny_net(seed, 2, ["relu", "gelu", "silu"][seed % 3])
        graph = BoundGraph(net)
        x = torch.rand(2, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        y = torch.tensor([0, 2])
        for r in (0.05, 0.3):
            upper = margin_upper_rows(graph, x, torch.full((2,), r, dtype=torch.float64), y, norm)
            for i in range(2):
                pts = region_points(x[i], r, norm, 25)
                z = net(pts)
                m = z - z[:, int(y[i])][:, None]
                assert (m.amax(dim=0) <= upper[i] + 1e-9).all()


TABLE = [
    piecewise_linear(0.0),
    piecewise_linear(0.2),
    elu(1.0),
    elu(0.5),
    elu(2.0),
    GELU,
    SILU,
    TANH,
    SIGMOID,
]
TABLE_IDS = ["relu", "leaky_relu_0.2", "elu_1", "elu_0.5", "elu_2", "gelu", "silu", "tanh", "sigmoid"]


@pytest.mark.parametrize("act", TABLE, ids=TABLE_IDS)
def test_sup_slope_bounds_the_derivative_tightly(act) -> None:
    """sup_slope (the global certificate's derivative bound) is >= |sigma'| on a dense grid of [-40, 40]
    (beyond it every derivative of the table is monotone towards its limit) and within 1e-4 of its max."""
    xs = torch.linspace(-40, 40, 800001, dtype=torch.float64)
    top = float(act.derivative(xs).abs().max())
    assert top <= act.sup_slope < top + 1e-4


def test_activation_critical_points() -> None:
    """The hard-coded special points are where the derivatives say they are."""
    t = torch.tensor
    assert abs(float(_gelu_deriv(t(GELU_MIN, dtype=torch.float64)))) < 1e-9
    assert abs(float(_silu_deriv(t(SILU_MIN, dtype=torch.float64)))) < 1e-9
    s = torch.sigmoid(t(SILU_DERIV_CRIT, dtype=torch.float64))
    assert abs(float(2 + SILU_DERIV_CRIT * (1 - 2 * s))) < 1e-9
    assert math.sqrt(2.0) == GELU_DERIV_CRIT
    xs = torch.linspace(-8, 8, 200001, dtype=torch.float64)
    for deriv, crit in ((_gelu_deriv, GELU_DERIV_CRIT), (_silu_deriv, SILU_DERIV_CRIT)):
        vals = deriv(xs)
        assert abs(float(xs[vals.argmax()]) - crit) < 1e-3
        assert abs(float(xs[vals.argmin()]) + crit) < 1e-3


@pytest.mark.parametrize(
    "act",
    TABLE,
    ids=TABLE_IDS,
)
def test_activation_ranges_contain_samples(act) -> None:
    g = torch.Generator().manual_seed(0)
    lo = torch.randn(300, generator=g, dtype=torch.float64) * 3
    hi = lo + torch.rand(300, generator=g, dtype=torch.float64) * 4
    box, dlo, dhi = bound_activation(act, Box(lo, hi))
    ts = torch.linspace(0, 1, 2001, dtype=torch.float64)[:, None]
    pts = lo + ts * (hi - lo)
    v, dv = act.value(pts), act.derivative(pts)
    assert (v >= box.lo - 1e-12).all() and (v <= box.hi + 1e-12).all()
    assert (dv >= dlo - 1e-12).all() and (dv <= dhi + 1e-12).all()
    # tight: the sampled ranges reach the bounds up to the sampling resolution
    assert (v.amin(0) - box.lo).max() < 1e-3 and (box.hi - v.amax(0)).max() < 1e-3
