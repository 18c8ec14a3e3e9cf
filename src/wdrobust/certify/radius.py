"""The ``radius`` certificate (zero_one, sound): certified radii r_i <= the distance to the nearest flip.

Two sound routes, and r_i is the larger of the two (0 for misclassified samples):
- shells: the largest r with m_j(x_i) + Phi_ij(r) < 0 for every j != y_i, where Phi_ij is the local
  shell majorant of m_j (base.certified_radius_from_shells);
- interval verification: the ball B(x_i, r) cap [0,1]^d is verified when the interval upper bound of every
  m_j, j != y_i, over it is negative; the largest verified r is found by bisection on a log scale.
The certified lower bound on distributional robust accuracy is the knapsack on r_i (primal.CertifiedRadii).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from wdrobust.certify.base import ShellBound, box_diameter, certified_radius_from_shells
from wdrobust.certify.bounds import BoundGraph, margin_upper_rows
from wdrobust.certify.local import LocalCertificate
from wdrobust.losses import margins

#: Bisection steps of the interval verification (log scale between diam * MIN_FRACTION and diam).
BISECTION_STEPS = 16
MIN_FRACTION = 1e-6


def verified_radius(
    graph: BoundGraph, x: torch.Tensor, y: torch.Tensor, norm: str, top: float
) -> torch.Tensor:
    """Largest radius in the log bisection on [top * MIN_FRACTION, top] at which interval propagation
    proves m_j < 0 for every j != y_i on the whole region; 0 where none is proven. Shape (n,)."""
    n = x.shape[0]
    lo = x.new_full((n,), top * MIN_FRACTION)
    hi = x.new_full((n,), top)
    best = x.new_zeros(n)
    with torch.no_grad():
        for _ in range(BISECTION_STEPS):
            mid = (lo * hi).sqrt()
            upper = margin_upper_rows(graph, x, mid, y, norm)
            upper = upper.scatter(1, y[:, None], float("-inf"))
            ok = (upper < 0).all(dim=1)
            best = torch.where(ok, torch.maximum(best, mid), best)
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, mid)
    return best


class RadiusCertificate(LocalCertificate):
    """Certified radii for the zero_one loss (also returns the local shell majorants for ce / margin)."""

    name = "radius"
    sound = True

    def __init__(
        self,
        model: nn.Module,
        norm: str = "linf",
        *,
        losses: Sequence[str] = ("zero_one",),
        **options: Any,
    ) -> None:
        super().__init__(model, norm, losses=losses, **options)

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        lip, knots = self.shell_lipschitz(x, y)
        z = z.to(lip.dtype)
        bound = ShellBound.from_margins(lip, knots, z, y, self.losses)
        shells = bound.certified_radius  # computed there when zero_one is among the losses
        if shells is None:
            shells = certified_radius_from_shells(margins(z, y), lip, knots, y)
        top = box_diameter(self.norm, x[0].numel())
        interval = verified_radius(self.graph(), self.graph_input(x), y, self.norm, top)
        correct = z.argmax(dim=1) == y
        bound.certified_radius = torch.where(
            correct, torch.maximum(shells, interval), torch.zeros_like(shells)
        )
        return bound
