"""The ``local`` certificate (sound): per-shell margin Lipschitz bounds from the interval bound engine.

For outer radii r_1 < ... < r_M = diam X (base.default_radii around eps unless given),
L_ij(r_m) >= sup over B(x_i, r_m) cap [0,1]^d of ||grad m_j||_* (``margin_lipschitz``), and

    phibar_i(t) = sum_m Lip_i(r_m) |[0, t] cap (r_m-1, r_m]|,   Lip_i = max_{j != y_i} L_ij (ce, margin)

is a sound growth majorant: the segment from x_i to any x' with ||x' - x_i|| <= t stays in [0,1]^d and
its part at distance in (r_m-1, r_m] from x_i lies in B(x_i, r_m).
"""

from __future__ import annotations

from typing import Any

import torch

from wdrobust.certify.base import Certificate, ShellBound, shell_knots
from wdrobust.certify.bounds import BoundGraph, margin_lipschitz

__all__ = ["LocalCertificate", "margin_lipschitz"]


class LocalCertificate(Certificate):
    """Sound shell majorants from interval propagation and interval backward passes (any supported graph).

    The model is traced once (torch.fx) on first use; an unsupported operation raises a ValueError
    naming it.
    """

    name = "local"
    sound = True

    def graph(self) -> BoundGraph:
        """The model's bound graph, traced on first use."""
        if getattr(self, "_graph", None) is None:
            self._graph = BoundGraph(self.model)
        return self._graph

    def shell_lipschitz(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L (n, K, M), knots (n, M)) for the batch x (n, *S), y (n,) on the certificate's shells."""
        radii = self.shell_radii(x[0].numel())
        knots = shell_knots(radii, x)
        lip = margin_lipschitz(self.graph(), x, y, knots[0], self.threat.norm, device=self.device)
        return lip, knots

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        lip, knots = self.shell_lipschitz(x, y)
        return ShellBound.from_margins(lip, knots, z, y, self.losses)
