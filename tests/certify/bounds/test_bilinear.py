"""The optimisable McCormick relaxation of the product of two interval matrices (``bilinear.MatMulRule``).

(a) every interpolation (su, sl) in [-1, 1]^2 (the ends, 0, random values and the default ``plane_choice``,
    per specification and product term) gives lam . (A @ B) <= coef_A . A + coef_B . B + bias at sampled
    points of the operands' boxes (corners included); (0, 0) is the centre linearisation
    A CB + CA B - CA CB -+ RA RB;
(b) ``plane_choice`` minimises the largest value of the upper plane (maximises the smallest value of the
    lower plane) over the operands' boxes among a grid of interpolations, term by term;
(c) alpha-CROWN with the rule's parameters on tiny nets with a product of two linear maps of the input
    (no activation, so the parameters are all there is to optimise) and on a tiny ViT: the optimised
    margin bounds are >= the margins on dense grids of the region and <= plain CROWN's, and on the
    activation-free net strictly below it for some row (the parameters get gradients).
"""

from __future__ import annotations

import pytest
import torch
from _certify_brute import region_points
from _transformer_brute import Flat, tiny_vit
from torch import nn

from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.bounds.bilinear import MatMulRule, plane_choice
from wdrobust.certify.bounds.interval import Box
from wdrobust.certify.bounds.lipschitz import margin_cotangents
from wdrobust.certify.bounds.propagation import Crown, margin_bounds
from wdrobust.certify.bounds.region import Region

TOL = 1e-9


def _box(shape: tuple[int, ...], g: torch.Generator) -> Box:
    c = torch.randn(shape, generator=g, dtype=torch.float64) * 1.5
    r = torch.rand(shape, generator=g, dtype=torch.float64) * 1.5 * (torch.rand(shape, generator=g) > 0.1)
    return Box(c - r, c + r)


def _points(box: Box, k: int, g: torch.Generator) -> torch.Tensor:
    u = torch.rand((k, *box.lo.shape), generator=g, dtype=torch.float64)
    u[: k // 2] = (u[: k // 2] > 0.5).double()
    return box.lo + u * (box.hi - box.lo)


@pytest.mark.parametrize("fill", ["default", "zero", "minus", "plus", "random"])
def test_every_interpolation_is_sound(fill: str) -> None:
    g = torch.Generator().manual_seed(7)
    a, b = _box((2, 3, 4, 5), g), _box((2, 3, 5, 2), g)
    rule = MatMulRule(torch.matmul, "mm")
    rule.forward(a, b)
    rel = rule.relax([a, b])
    init, lo, hi = rule.params(rel, 4)
    assert init.shape == (2, 4, 3, 4, 5, 2, 2) and (lo, hi) == (-1.0, 1.0)
    s = {
        "default": init,
        "zero": torch.zeros_like(init),
        "minus": torch.full_like(init, -1.0),
        "plus": torch.ones_like(init),
        "random": torch.rand(init.shape, generator=g, dtype=torch.float64) * 2 - 1,
    }[fill]
    lam = torch.randn((2, 4, 3, 4, 2), generator=g, dtype=torch.float64)
    (ca, cb), bias = rule.linear_backward(lam, rel, s)
    if fill == "default":
        (pa, pb), pbias = rule.linear_backward(lam, rel)
        assert torch.allclose(ca, pa) and torch.allclose(cb, pb) and torch.allclose(bias, pbias)
    if fill == "zero":  # the centre linearisation
        c_a, c_b, r_a, r_b = a.center, b.center, a.radius, b.radius
        assert torch.allclose(ca, lam @ c_b.unsqueeze(1).transpose(-2, -1))
        assert torch.allclose(cb, c_a.unsqueeze(1).transpose(-2, -1) @ lam)
        centre = -(lam * (c_a @ c_b).unsqueeze(1)) + lam.abs() * (r_a @ r_b).unsqueeze(1)
        assert torch.allclose(bias, centre.flatten(2).sum(dim=2))
    pa, pb = _points(a, 600, g), _points(b, 600, g)
    lhs = (lam.unsqueeze(0) * (pa @ pb).unsqueeze(2)).flatten(3).sum(dim=3)
    rhs = bias + (ca * pa.unsqueeze(2)).flatten(3).sum(dim=3) + (cb * pb.unsqueeze(2)).flatten(3).sum(dim=3)
    assert (lhs <= rhs + TOL * (1 + rhs.abs())).all(), float((lhs - rhs).max())


def test_plane_choice_gives_the_best_plane_over_the_boxes() -> None:
    g = torch.Generator().manual_seed(3)
    a, b = _box((2, 3, 4), g), _box((2, 4, 3), g)
    ca, ra = a.center.unsqueeze(-1), a.radius.unsqueeze(-1)  # (N, i, j, 1)
    cb, rb = b.center.unsqueeze(-3), b.radius.unsqueeze(-3)  # (N, 1, j, k)
    planes = plane_choice(ca, cb, ra, rb)  # (N, i, j, k, 2)

    def top(s: torch.Tensor) -> torch.Tensor:  # the upper plane's largest value over the boxes
        return ca * cb + ra * rb + ra * (cb + s * rb).abs() + rb * (ca - s * ra).abs()

    def bottom(s: torch.Tensor) -> torch.Tensor:  # the lower plane's smallest value over the boxes
        return ca * cb - ra * rb - ra * (cb - s * rb).abs() - rb * (ca - s * ra).abs()

    for s in torch.linspace(-1, 1, 41, dtype=torch.float64):
        assert (top(planes[..., 0]) <= top(s) + TOL).all()
        assert (bottom(planes[..., 1]) >= bottom(s) - TOL).all()
    assert (planes.abs() <= 1).all() and (planes != 0).any()


class Product(nn.Module):
    """x (N, 2) -> head(flatten((P x) (Q x))) with P x as (N, 2, 3), Q x as (N, 3, 2), 3 classes."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.p, self.q, self.head = nn.Linear(2, 6), nn.Linear(2, 6), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.p(x).reshape(-1, 2, 3) @ self.q(x).reshape(-1, 3, 2)
        return self.head(z.flatten(1))


def _rows(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(3, 2, generator=g, dtype=torch.float64)
    _, c = margin_cotangents(torch.randint(0, 3, (3,), generator=g), 3)
    return x0, c.double(), torch.tensor([0.05, 0.2, 0.6], dtype=torch.float64)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_optimised_products_dominate_the_grid_and_beat_the_centre_planes(norm: str) -> None:
    moved = 0
    for seed in range(3):
        net = Product(seed).double().eval().requires_grad_(False)
        x0, c, r = _rows(seed)
        region = Region.ball(x0, r, norm)
        graph = BoundGraph(net)
        plain = Crown(graph, region, "crown").upper(graph.output, c)
        best = Crown(graph, region, "crown").optimise_upper(c, 15)
        assert (best <= plain + 1e-12).all()
        moved += int((best < plain - 1e-6).any())
        for i in range(3):
            truth = (net(region_points(x0[i], float(r[i]), norm, 61)) @ c[i].T).amax(dim=0)
            assert (truth <= best[i] + TOL).all(), (seed, i, truth, best[i])
    assert moved > 0


def test_optimised_tiny_vit_dominates_the_grid() -> None:
    net = Flat(tiny_vit(3))
    x0, c, r = _rows(3)
    region = Region.ball(x0, r, "linf")
    plain, _, _ = margin_bounds(BoundGraph(net), region, c, intermediate="crown")
    best, _, _ = margin_bounds(BoundGraph(net), region, c, intermediate="crown", alpha_steps=5)
    assert (best <= plain + 1e-12).all()
    for i in range(3):
        truth = (net(region_points(x0[i], float(r[i]), "linf", 61)) @ c[i].T).amax(dim=0)
        assert (truth <= best[i] + TOL).all(), (i, truth, best[i])
