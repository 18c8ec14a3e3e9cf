"""Counterexample search inside BaB domains: projected gradient ascent on the property's violation.

A point x is a counterexample of a property (``property``) when x lies in its region (box cap ball) and in
the domain's box [lo, hi], and violation(f(x)) = max_g min_{m in g} s_m(x) >= 0 for the float64 network;
only points that pass this re-check are returned.
"""

from __future__ import annotations

import torch
from torch import nn

from wdrobust.certify.bab.property import BabProperty
from wdrobust.threat import lp_norm, project_ball, steepest

#: Relative shrink of the projection radius so that rounding keeps projected points inside the ball.
INSIDE = 1e-9


def max_margin(model: nn.Module, x: torch.Tensor, y: int) -> torch.Tensor:
    """max_{j != y} z_j(x) - z_y(x) per row of x (P, *S) in x's dtype."""
    z = model(x)
    other = z.clone()
    other[:, y] = -torch.inf
    return other.amax(dim=1) - z[:, y]


def inside(x: torch.Tensor, prop: BabProperty, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """(P,) bool: x (P, *S) in the property's ball and in [lo, hi] (P, *S), a box inside the region's."""
    reg = prop.region
    flat = (x - reg.x0).reshape(x.shape[0], -1)
    in_box = ((x >= lo) & (x <= hi)).reshape(x.shape[0], -1).all(dim=1)
    return in_box & (lp_norm(flat, reg.norm) <= reg.r[0])


def search(
    model: nn.Module,
    prop: BabProperty,
    starts: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    steps: int,
) -> torch.Tensor | None:
    """A re-checked counterexample (*S) float64, or None: PGD from starts (P, *S) on the violation with
    step r / 4 halved every steps / 3 iterations, each iterate projected onto the region's ball B(x0, r)
    and clamped to [lo, hi] (P, *S) (the domain's box cap the region's); every iterate is checked, the
    start included."""
    x0, r, norm = prop.region.x0, float(prop.region.r[0]), prop.region.norm
    x = starts.clone()
    step = r / 4
    for t in range(steps + 1):
        x = x0 + project_ball(x - x0, r * (1 - INSIDE), norm)
        x = torch.minimum(torch.maximum(x, lo), hi).detach().requires_grad_(True)
        with torch.enable_grad():
            m = prop.violation(model(x))
            grad = torch.autograd.grad(m.sum(), x)[0] if t < steps else None
        hit = (m.detach() >= 0) & inside(x.detach(), prop, lo, hi)
        if hit.any():
            return x.detach()[hit.nonzero()[0, 0]]
        if grad is None:
            break
        x = x.detach() + step * steepest(grad, norm)
        if steps >= 3 and (t + 1) % max(1, steps // 3) == 0:
            step /= 2
    return None
