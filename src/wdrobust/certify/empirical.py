"""The ``empirical`` estimate: the largest margin-gradient dual norm over the points actually visited.

L_ij = max over x' in V_i of ||grad m_j(x')||_*, where V_i = {x_i} plus the points an attack visited
from x_i (e.g. ``AttackResult.points`` from an attack run with keep_points=True). Any differentiable
model works (transformers included). It is exact when the worst case stays in the visited activation
cells, otherwise it can be below the truth: it is NOT an upper bound (``sound = False``); compare it with
the sound certificates to see how far an estimate can be from a guarantee.
"""

from __future__ import annotations

from typing import Any

import torch

from wdrobust.certify.base import Certificate, CertificateResult, ShellBound
from wdrobust.nets.gradients import margin_gradients
from wdrobust.threat import lp_norm


class Empirical(Certificate):
    """Estimate from visited points: ``run(x, y, visited=None)`` with visited of shape (N, M, *S).

    Visited points containing NaN (padding) are ignored. One shell up to the diameter of X.
    """

    name = "empirical"
    sound = False
    reads_layers = False
    needs_points = True

    def run(self, x: torch.Tensor, y: torch.Tensor, visited: torch.Tensor | None = None) -> CertificateResult:
        """Certify x (N, *S), y (N,), with optional visited points (N, M, *S)."""
        if visited is not None and tuple(visited.shape[2:]) != tuple(x.shape[1:]):
            raise ValueError(
                f"visited points must have shape (N, M, *{tuple(x.shape[1:])}), got {tuple(visited.shape)}"
            )
        return super().run(x, y, visited=visited)

    def _gradient_norms(self, points: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """||grad m_j(points_i)||_* for points (P, *S), y (P,), in chunks of batch_size; shape (P, K)."""
        parts = []
        for lo in range(0, points.shape[0], self.batch_size):
            _, g = margin_gradients(
                self.model, points[lo : lo + self.batch_size], y[lo : lo + self.batch_size]
            )
            parts.append(lp_norm(g, self.dual, batch_dims=2))
        return torch.cat(parts)

    def _bound_batch(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        z: torch.Tensor,
        visited: torch.Tensor | None = None,
        **batch: Any,
    ) -> ShellBound:
        n = x.shape[0]
        pts = x[:, None] if visited is None else torch.cat([x[:, None], visited.to(x.dtype)], dim=1)
        m = pts.shape[1]
        flat = pts.reshape(n * m, *x.shape[1:])
        valid = ~flat.reshape(n * m, -1).isnan().any(dim=1)
        norms = torch.zeros(n * m, z.shape[1], dtype=z.dtype, device=z.device)
        norms[valid] = self._gradient_norms(flat[valid], y.repeat_interleave(m)[valid])
        lip = norms.reshape(n, m, -1).amax(dim=1)[:, :, None]  # (n, K, 1)
        knots = self.whole_box_knots(x, z)
        return ShellBound.from_margins(lip, knots, z, y, self.losses)
