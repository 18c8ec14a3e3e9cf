"""The ``first-order`` estimate (Bai et al., NeurIPS 2023): linearise every loss at the data points.

phibar_i(t) = ||grad_x l(x_i, y_i)||_* t, so the primal solver returns the Hoelder value
R(0) + eps (mean_i ||grad l(x_i)||_*^q)^(1/q). It ignores curvature and is NOT an upper bound
(``sound = False``): the loss can grow faster than its gradient at x_i. The zero_one "radius" is the
linearised flip distance min_j -m_j(x_i) / ||grad m_j(x_i)||_*, again an estimate. Baseline only.
"""

from __future__ import annotations

from typing import Any

import torch

from wdrobust.certify.base import Certificate, ShellBound, certified_radius_from_shells
from wdrobust.losses import loss_fn
from wdrobust.nets.gradients import margin_gradients
from wdrobust.threat import lp_norm


def loss_gradient_norms(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, losses: tuple[str, ...], dual: str
) -> dict[str, torch.Tensor]:
    """{loss: ||grad_x l(x_i, y_i)||_dual} for x (n, *S), y (n,); each value has shape (n,)."""
    x = x.detach().requires_grad_(True)
    out = {}
    with torch.enable_grad():
        z = model(x)
        for i, name in enumerate(losses):
            (g,) = torch.autograd.grad(loss_fn(name, z, y).sum(), x, retain_graph=i + 1 < len(losses))
            out[name] = lp_norm(g, dual)
    return out


class FirstOrder(Certificate):
    """Estimate: one linear segment per sample with the gradient's dual norm at x_i as slope."""

    name = "first-order"
    sound = False
    reads_layers = False

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        smooth = tuple(name for name in self.losses if name != "zero_one")
        norms = loss_gradient_norms(self.model, x, y, smooth, self.dual)
        knots = self.whole_box_knots(x, z)
        m, g = margin_gradients(self.model, x, y)
        lip = lp_norm(g, self.dual, batch_dims=2)[:, :, None]
        radius = certified_radius_from_shells(m, lip, knots, y) if "zero_one" in self.losses else None
        lip0 = norms[smooth[0]] if smooth else lip[:, :, 0].amax(dim=1)
        return ShellBound(knots, {k: v[:, None] for k, v in norms.items()}, lip0, radius)
