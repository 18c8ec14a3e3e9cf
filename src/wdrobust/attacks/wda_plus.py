"""``wda++``: closest-flip oracle + bisection + the zero_one knapsack
(docs/notation.md#certified-radius-and-flip-distance).

Oracle: from x_i, greedy steps without projection (box clip only) toward the best of the top-k targets:
the target with the smallest first-order distance to its boundary, -m_j / ||grad m_j||_*, and a step of
that length (times 1 + overshoot) along the dual-norm maximiser, until the label flips or ``max_steps``
is reached (then d_i = inf). Bisection on the last segment [x_prev, x_flip] and on the ray [x_i, x_flip]
gives a misclassified point at distance d_i. The knapsack over the d_i (``primal.FlipDistances``)
turns them into distributional robust accuracy; every evaluated point is also a candidate point.
"""

from __future__ import annotations

import torch

from wdrobust._options import Option, at_least
from wdrobust.attacks.base import Attack
from wdrobust.attacks.batch import Batch
from wdrobust.attacks.steps import feasible, steepest_step
from wdrobust.attacks.wda import repeated_margin


def bisect(batch: Batch, lo: torch.Tensor, hi: torch.Tensor, rows: torch.Tensor, steps: int) -> torch.Tensor:
    """Bisection on segments [lo, hi] (m, *S) with lo correctly classified and hi misclassified: returns
    the misclassified end after ``steps`` halvings (one forward of the m midpoints each)."""
    shape = (-1, *([1] * (lo.dim() - 1)))
    for _ in range(steps):
        mid = (lo + hi) / 2
        wrong = (batch.evaluate(mid, rows).argmax(1) != batch.y[rows]).reshape(shape)
        lo, hi = torch.where(wrong, lo, mid), torch.where(wrong, mid, hi)
    return hi


class WDAPlus(Attack):
    """Closest-flip attack. Options: k (targets, capped at K - 1), max_steps, overshoot, bisection steps."""

    name = "wda++"
    declared = (
        Option("k", int, 3, at_least(1), "targets (capped at K - 1)"),
        Option("max_steps", int, 30, at_least(1), "greedy steps before giving up (d_i = inf)"),
        Option("overshoot", float, 0.05, at_least(0), "each step is (1 + overshoot) times the estimate"),
        Option("bisection", int, 10, at_least(0), "bisection steps on the crossing segments"),
    )

    def attack_batch(self, batch: Batch) -> None:
        k = min(self.k, batch.classes - 1)
        targets = batch.top_targets(k)
        x, prev = batch.x0.clone(), batch.x0.clone()
        flipped = batch.z0.argmax(1) != batch.y
        crossed = torch.zeros_like(flipped)
        shape = (-1, *([1] * (x.dim() - 1)))
        diameter = batch.threat.diameter(x[0].numel())
        for _ in range(self.max_steps):
            rows = batch.all[~flipped]
            if rows.numel() == 0:
                break
            m = rows.numel()
            reps = (k, *([1] * (x.dim() - 1)))
            z, v, g = batch.gradient(
                x[rows].repeat(reps),
                repeated_margin(batch.y[rows], targets[rows], batch.classes),
                rows.repeat(k),
            )
            now = z[:m].argmax(1) != batch.y[rows]
            g = feasible(g, x[rows].repeat(reps))
            dist = (-v).clamp(min=0) / batch.threat.dual_norm(g)
            dist = torch.nan_to_num(dist, nan=float("inf")).reshape(k, m)
            best = dist.argmin(dim=0)
            pick = best * m + torch.arange(m, device=x.device)
            length = (dist[best, torch.arange(m, device=x.device)] * (1 + self.overshoot)).clamp(max=diameter)
            length = torch.where(length.isfinite(), length, torch.full_like(length, diameter / 10))
            u = steepest_step(g[pick], x[rows], batch.threat.norm)
            step = (x[rows] + length.reshape(shape) * u).clamp(0.0, 1.0)
            go = ~now
            prev[rows[go]] = x[rows[go]]
            x[rows[go]] = step[go]
            crossed[rows[now]] = True
            flipped[rows[now]] = True
        rest = batch.all[~flipped]
        if rest.numel():
            crossed[rest] = batch.evaluate(x[rest], rest).argmax(1) != batch.y[rest]
        crossed &= batch.z0.argmax(1) == batch.y
        rows = batch.all[crossed]
        if rows.numel() and self.bisection:
            hi = bisect(batch, prev[rows], x[rows], rows, self.bisection)
            bisect(batch, batch.x0[rows], hi, rows, self.bisection)
