"""``w-pgd``: Wasserstein PGD of Bai, He, Jiang, Obloj (NeurIPS 2023), written from the paper's rules.

The batch is one distribution: all samples move together under one W_p budget. With g_i = grad l(x_i),
q = p / (p - 1) and u*(g) the dual-norm maximiser (``steepest``, ||u*|| = 1, <g, u*> = ||g||_*):

    direction  d_i = ||g_i||_*^(q-1) u*(g_i) / (mean_j ||g_j||_*^q)^(1/p)      (mean_i ||d_i||^p = 1)
    step       x_i <- x_i + eta d_i,   eta = ratio eps / steps  (published: ratio 1.875, 50 steps)
    projection W = (mean_i ||x_i - x0_i||^p)^(1/p); if W > eps every displacement is contracted by
               the common factor eps / W (linf: clamped to +-(eps / W) ||delta_i||_inf, as in the paper;
               l2, l1: scaled), then clipped to the box [0, 1].

d is the maximiser of sum_i <g_i, d_i> under mean_i ||d_i||^p <= 1 (Hoelder), so the budget goes where the
gradients are large. p = inf (q = 1): d_i = u*(g_i) and the projection is the point-wise one (PGD).
p = 1 (q = inf) is the limit: the whole step goes to the samples of largest ||g_i||_*. Weights are
computed as (||g_i||_* / max_j ||g_j||_*)^(q-1), which is the same direction and finite for every p.
Every iterate is a recorded candidate, so the primal solver's distribution is at least as bad as the
best iterate's (each iterate is one feasible distribution of the ball).
"""

from __future__ import annotations

import math

import torch

from wdrobust._options import Option, at_least, positive
from wdrobust.attacks.base import DIFFERENTIABLE, Attack
from wdrobust.attacks.batch import Batch
from wdrobust.attacks.objectives import loss_objective
from wdrobust.attacks.steps import feasible, safe_radius
from wdrobust.threat import lp_norm, steepest


def transport_weights(dual: torch.Tensor, p: float) -> torch.Tensor:
    """w_i = (||g_i||_* / max_j ||g_j||_*)^(q-1) normalised so that mean_i w_i^p = 1, for dual (m,)
    float64; q = p / (p - 1) (p = 1: the indicator of the maximum; p = inf: all ones)."""
    if math.isinf(p):
        return torch.ones_like(dual)
    top = dual.max()
    if not bool(top > 0):
        return torch.ones_like(dual)  # no gradient anywhere: any direction (all are 0)
    ratio = dual / top
    w = (ratio >= 1).to(dual.dtype) if p == 1 else ratio.pow(1.0 / (p - 1))  # q - 1 = 1 / (p - 1)
    return w / w.pow(p).mean().pow(1.0 / p)


def w_project(x: torch.Tensor, x0: torch.Tensor, eps: float, p: float, norm: str) -> torch.Tensor:
    """The global contraction onto {mean_i ||x_i - x0_i||^p <= eps^p} (see the module docstring), then
    the box clip; x, x0 (m, *S), p < inf. The clip only shortens displacements (x0 lies in the box)."""
    delta = x - x0
    t = lp_norm(delta.reshape(x.shape[0], -1).double(), norm)
    w = t.pow(p).mean().pow(1.0 / p)
    if bool(w > eps):
        factor = eps / w
        shape = (-1, *([1] * (x.dim() - 1)))
        if norm == "linf":
            bound = (factor * t).to(x.dtype).reshape(shape)
            delta = torch.maximum(torch.minimum(delta, bound), -bound)
        else:
            delta = delta * factor.to(x.dtype)
    return (x0 + delta).clamp_(0.0, 1.0)


class WPGD(Attack):
    """W-PGD (Bai et al. 2023) on each batch as one distribution. Options: steps (default 50), ratio
    (eta = ratio eps / steps, default 1.875), loss (ce, margin or dlr; default ce)."""

    name = "w-pgd"
    declared = (
        Option("steps", int, 50, at_least(1), "gradient steps"),
        Option("ratio", float, 1.875, positive(), "eta = ratio eps / steps"),
        Option("loss", str, "ce", DIFFERENTIABLE, "the loss ascended"),
    )

    def attack_batch(self, batch: Batch) -> None:
        threat, eps = self.threat, self.threat.eps
        objective = loss_objective(self.loss, batch.y, batch.classes)
        eta = self.ratio * eps / self.steps
        budget = float(safe_radius(torch.tensor(eps, dtype=torch.float64)))
        shape = (-1, *([1] * (batch.x0.dim() - 1)))
        x = batch.x0
        for _ in range(self.steps):
            _, _, g = batch.gradient(x, objective, values=False)
            g = g if threat.norm == "linf" else feasible(g, x)  # l2, l1: the box-feasible gradient
            w = transport_weights(threat.dual_norm(g).double(), threat.p).to(x.dtype).reshape(shape)
            step = x + eta * w * steepest(g, threat.norm)
            if math.isinf(threat.p):
                x = batch.project(step, batch.all, eps, inplace=True)
            else:
                x = w_project(step, batch.x0, budget, threat.p, threat.norm)
        batch.evaluate(x)
