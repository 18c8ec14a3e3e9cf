"""Softmax refined by linear bounds of its input (``SoftmaxRule.refine``), against brute force.

Inputs are affine images x = A z + b of a box of z (``_affine_regions``: correlated logits, as inside a
network) with the exact linear upper bound over that box of z, softmax along the last axis and along
axis 1: the refined boxes of the differences x_j - x_i and of the output contain the sampled values
(corners of z included), the refined relaxation holds there, and the refined output box is tighter.
"""

from __future__ import annotations

import pytest
import torch
from _affine_regions import affine_image
from torch import nn

from wdrobust.certify.bounds.softmax import SoftmaxRule, box_of_differences, differences

TOL = 1e-9


@pytest.mark.parametrize("dim", [-1, 1])
def test_refined_softmax_is_sound_and_tighter(dim: int) -> None:
    tighter = 0
    for seed in range(6):
        for spread in (0.02, 0.3, 1.5):
            g = torch.Generator().manual_seed(seed)
            x, pts, upper = affine_image(g, 2, (3, 4), spread)
            rule = SoftmaxRule(nn.Softmax(dim=dim), "s")
            with torch.no_grad():
                rule.forward(x)
                last = rule._last(x)
                d = rule.refine(differences(last), tuple(last.lo.shape[1:]), upper)
                values = torch.softmax(pts, dim=rule.dim + 1)  # pts has the sample axis first
            moved = pts.movedim(rule.dim + 1, -1)  # (k, N, *L, n) with the softmax axis last
            diffs = moved.unsqueeze(-2) - moved.unsqueeze(-1)
            assert (diffs >= d.lo - TOL).all() and (diffs <= d.hi + TOL).all(), (seed, spread)
            out, plain = box_of_differences(d), box_of_differences(differences(last))
            s = values.movedim(rule.dim + 1, -1)
            assert (s >= out.lo - TOL).all() and (s <= out.hi + TOL).all(), (seed, spread)
            assert (out.hi - out.lo <= plain.hi - plain.lo + TOL).all()
            tighter += int(((out.hi - out.lo) < 0.8 * (plain.hi - plain.lo)).any())
            lam = torch.randn((2, 3, *x.lo.shape[1:]), generator=g, dtype=torch.float64)
            with torch.no_grad():
                (coef,), bias = rule.linear_backward(lam, rule.relax([x], upper))
            lhs = (lam.unsqueeze(0) * values.unsqueeze(2)).flatten(3).sum(dim=3)
            rhs = bias.unsqueeze(0) + (coef.unsqueeze(0) * pts.unsqueeze(2)).flatten(3).sum(dim=3)
            assert (lhs <= rhs + 1e-8 * (1 + rhs.abs())).all(), (seed, spread, float((lhs - rhs).max()))
    assert tighter > 0
