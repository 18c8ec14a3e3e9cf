"""LayerNorm refined by linear bounds of its input (``layernorm.refine``), against brute force.

The input rows are affine images x = A z + b of a box of z (``_affine_regions``: correlated entries, as
inside a network) with the exact linear upper bound over that box of z: the refined boxes of u, var and
y must contain the values at sampled z (corners included), the relaxation must hold there, and the
refined box of var must be tighter than the interval one.
"""

from __future__ import annotations

import torch
from _affine_regions import affine_image
from torch import nn

from wdrobust.certify.bounds.layernorm import LayerNormRule, pieces, refine

TOL = 1e-9


def _case(seed: int, spread: float):
    """(rule, x box, points x (k, N, T, n), upper, generator) for N = 2 rows of T = 3 tokens of n = 5
    entries (``affine_image``)."""
    g = torch.Generator().manual_seed(seed)
    n = 5
    x, pts, upper = affine_image(g, 2, (3, n), spread)
    ln = nn.LayerNorm(n).double()
    with torch.no_grad():
        ln.weight.copy_(torch.randn(n, generator=g, dtype=torch.float64))
        ln.bias.copy_(torch.randn(n, generator=g, dtype=torch.float64))
    rule = LayerNormRule(ln.requires_grad_(False), "ln")
    with torch.no_grad():
        rule.forward(x)
    return rule, x, pts, upper, g


def test_refined_boxes_contain_samples_and_tighten_the_variance() -> None:
    tighter = 0
    for seed in range(6):
        for spread in (0.02, 0.3, 1.5):
            rule, x, pts, upper, _ = _case(seed, spread)
            u_box, sq_box = refine(x, upper)
            u = pts - pts.mean(dim=-1, keepdim=True)
            var = u.square().mean(dim=-1, keepdim=True)
            assert (u >= u_box.lo - TOL).all() and (u <= u_box.hi + TOL).all()
            assert (var >= sq_box.lo - TOL).all() and (var <= sq_box.hi + TOL).all()
            p = pieces(x, rule.gamma, rule.beta, rule.eps, (u_box, sq_box))
            plain = pieces(x, rule.gamma, rule.beta, rule.eps)
            out = rule.op(pts)
            assert (out >= p.out.lo - 1e-8).all() and (out <= p.out.hi + 1e-8).all(), (seed, spread)
            assert (p.var.hi - p.var.lo <= plain.var.hi - plain.var.lo + TOL).all()
            tighter += int(((p.var.hi - p.var.lo) < 0.5 * (plain.var.hi - plain.var.lo)).any())
    assert tighter > 0


def test_refined_relaxation_holds_at_samples() -> None:
    for seed in range(6):
        for spread in (0.02, 0.3, 1.5):
            rule, x, pts, upper, g = _case(seed, spread)
            lam = torch.randn((x.lo.shape[0], 3, *x.lo.shape[1:]), generator=g, dtype=torch.float64)
            with torch.no_grad():
                (coef,), bias = rule.linear_backward(lam, rule.relax([x], upper))
                values = rule.op(pts)
            lhs = (lam.unsqueeze(0) * values.unsqueeze(2)).flatten(3).sum(dim=3)
            rhs = bias.unsqueeze(0) + (coef.unsqueeze(0) * pts.unsqueeze(2)).flatten(3).sum(dim=3)
            assert (lhs <= rhs + 1e-8 * (1 + rhs.abs())).all(), (seed, spread, float((lhs - rhs).max()))
