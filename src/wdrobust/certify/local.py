"""The ``local`` certificate (sound): per-shell margin Lipschitz bounds from the interval bound engine.

For outer radii r_1 < ... < r_M = diam X (given, e.g. base.default_radii around eps),
L_ij(r_m) >= sup over B(x_i, r_m) cap [0,1]^d of ||grad m_j||_* (``margin_lipschitz``), and

    phibar_i(t) = sum_m Lip_i(r_m) |[0, t] cap (r_m-1, r_m]|,   Lip_i = max_{j != y_i} L_ij (ce, margin)

is a sound growth majorant: the segment from x_i to any x' with ||x' - x_i|| <= t stays in [0,1]^d and
its part at distance in (r_m-1, r_m] from x_i lies in B(x_i, r_m). The boxes of the balls come from
interval propagation or, for transformers, from CROWN (option ``boxes``).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from wdrobust._options import Option, one_of
from wdrobust.certify.base import Certificate, ShellBound, shell_knots
from wdrobust.certify.bounds import BoundGraph, margin_lipschitz

__all__ = ["LocalCertificate", "margin_lipschitz"]


#: Ways of bounding the values of the network over each ball (the ``boxes`` option).
BOXES = ("auto", "interval", "crown")


class LocalCertificate(Certificate):
    """Sound shell majorants from interval propagation and interval backward passes (any supported graph).

    The model is traced once (torch.fx) on first use; an unsupported operation raises a ValueError
    naming it. Option boxes: ``interval`` (interval propagation, float32), ``crown`` (the inputs of every
    nonlinearity tightened by CROWN first, on a float64 copy of the model, ``bounds.propagation`` mode
    auto), or
    ``auto`` (crown when the graph has operations whose interval boxes compound quickly, the rules marked
    ``compounding``: products of two intervals, softmax, LayerNorm; interval otherwise).
    """

    name = "local"
    sound = True
    declared = (Option("boxes", str, "auto", one_of(*BOXES), "how the values over each ball are bounded"),)

    def graph(self) -> BoundGraph:
        """The model's bound graph (on a float64 copy when CROWN boxes are used), traced on first use."""
        if getattr(self, "_graph", None) is None:
            graph = BoundGraph(self.model)
            if self.uses_crown(graph):
                model = copy.deepcopy(self.model).double().requires_grad_(False).eval()
                graph = BoundGraph(model)
            self._graph = graph
        return self._graph

    def uses_crown(self, graph: BoundGraph) -> bool:
        """Whether the balls' boxes come from CROWN (see the class docstring)."""
        if self.boxes != "auto":
            return self.boxes == "crown"
        return any(rule.compounding for rule in graph.rule_of.values())

    def graph_input(self, x: torch.Tensor) -> torch.Tensor:
        """x in the dtype of the bound graph (float64 with CROWN boxes)."""
        return x.double() if self.uses_crown(self.graph()) else x

    def shell_lipschitz(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L (n, K, M), knots (n, M)) for the batch x (n, *S), y (n,) on the certificate's shells (in the
        dtype of the bound graph)."""
        graph = self.graph()
        xs = self.graph_input(x)
        knots = shell_knots(self.shell_radii(x[0].numel()), xs)
        mode = "auto" if self.uses_crown(graph) else None
        lip = margin_lipschitz(graph, xs, y, knots[0], self.norm, device=self.device, intermediate=mode)
        return lip, knots

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        lip, knots = self.shell_lipschitz(x, y)
        return ShellBound.from_margins(lip, knots, z.to(lip.dtype), y, self.losses)
