"""The ``global`` certificate (sound): one Lipschitz constant per class pair from the weights alone.

For c = e_j - e_y, grad m_j(x) = A_1^T D_1 A_2^T D_2 ... D_{L-1} A_L^T c with D_l = diag(s_l'(.)),
|D_l| <= s_l := sup |s_l'| (chain.activation_slope). Two sound bounds of sup_x ||grad m_j(x)||_*:

- absolute-value propagation (every norm): |grad m_j| <= s_1 |A_1|^T s_2 |A_2|^T ... s_{L-1} |A_L^T c|
  elementwise, so ||grad m_j||_* <= ||that vector||_*. For the linf threat (dual l1) this is the
  ||  |c^T A_L| |A_{L-1}| ... |A_1|  ||_1 bound; it is never larger than the product of the induced
  l_inf -> l_inf norms (max row l1 sums) and, for the l1 threat, of the l1 -> l1 norms (max column sums).
- spectral product (l2 threat): ||grad m_j||_2 <= ||A_L^T c||_2 prod_{l<L} s_l ||A_l||_2, where
  ||A_l||_2 is the exact largest singular value of the materialised block (SVD in float64) or, for blocks
  too large to materialise (big convolutions), the certified sqrt(||A||_1 ||A||_inf). Power iteration is
  not used: it converges from below and would not give an upper bound.

The bound is the smaller of the two (l2) or the first (linf, l1), times (1 + 1e-6) against float64
rounding. It depends only on (y, j), so it is computed once per certificate as a (K, K) table.
Models that are not nn.Sequential at all (transformers, residual nets) get the interval Jacobian
bound of the bound engine over the whole box X instead (sound: every point of the threat lies in X), or,
when the engine cannot bound them either, a ValueError giving both reasons.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from wdrobust.certify.base import Certificate, ShellBound, box_diameter
from wdrobust.certify.bounds import BoundGraph, margin_lipschitz
from wdrobust.certify.chain import Chain, build_chain
from wdrobust.threat import lp_norm

#: Relative margin for floating-point rounding in the float64 products.
ROUNDING = 1e-6


def pair_lipschitz(chain: Chain, norm: str, num_classes: int) -> torch.Tensor:
    """Table L[y, j] >= sup_x ||grad_x (z_j - z_y)||_* over all inputs, shape (K, K), diagonal 0.

    norm: the threat norm (the bound is in its dual). Formulas in the module docstring.
    """
    device = chain.blocks[-1].device
    eye = torch.eye(num_classes, dtype=torch.float64, device=device)
    c = (eye[None, :, :] - eye[:, None, :]).reshape(num_classes * num_classes, num_classes)
    u = chain.blocks[-1].transpose(c.reshape(-1, *chain.blocks[-1].out_shape))
    dual = {"linf": "l1", "l2": "l2", "l1": "linf"}[norm]
    v = u.abs()
    for block, slope in zip(reversed(chain.blocks[:-1]), reversed(chain.slopes), strict=True):
        v = slope * block.abs_transpose(v)
    bound = lp_norm(v, dual)
    if norm == "l2":
        factor = math.prod(
            s * b.spectral_bound() for s, b in zip(chain.slopes, chain.blocks[:-1], strict=True)
        )
        bound = torch.minimum(bound, lp_norm(u, "l2") * factor)
    return (bound * (1 + ROUNDING)).reshape(num_classes, num_classes)


class GlobalLipschitz(Certificate):
    """Sound global Lipschitz certificate for Sequential MLPs and CNNs (see the module docstring).

    One shell: phibar_i(t) = min(cap_i, L_i t) with L_i = max_{j != y_i} L[y_i, j] (ce, margin), and the
    certified radius min_j -m_j(x_i) / L[y_i, j] for zero_one.
    """

    name = "global"
    sound = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tables: dict[tuple[int, ...], torch.Tensor] = {}

    def table(self, input_shape: tuple[int, ...], num_classes: int) -> torch.Tensor:
        """The (K, K) pair table for inputs of shape (n, *input_shape), cached per shape."""
        if input_shape not in self._tables:
            try:
                chain = build_chain(self.model, input_shape, self.device)
            except ValueError as exc:
                if isinstance(self.model, nn.Sequential):  # a chain with an unsupported layer: refuse
                    raise
                self._tables[input_shape] = self._whole_box_table(input_shape, num_classes, str(exc))
            else:
                self._tables[input_shape] = pair_lipschitz(chain, self.norm, num_classes)
        return self._tables[input_shape]

    def _whole_box_table(self, input_shape: tuple[int, ...], num_classes: int, why: str) -> torch.Tensor:
        """For models that are not chains (transformers, residual nets): L[y, j] >= sup over all of
        X = [0,1]^d of ||grad m_j||_* from the bound engine's interval Jacobian over the whole box (one row
        per label; sound because every input and every perturbed point lies in X). A model the engine
        cannot bound either is refused with both reasons."""
        try:
            graph = BoundGraph(copy.deepcopy(self.model).double().requires_grad_(False).eval())
            centre = torch.full((num_classes, *input_shape), 0.5, dtype=torch.float64, device=self.device)
            labels = torch.arange(num_classes, device=self.device)
            diam = box_diameter(self.norm, math.prod(input_shape))
            table = margin_lipschitz(graph, centre, labels, [diam], self.norm, device=self.device)
        except ValueError as exc:
            raise ValueError(f"global: {why}; and the bound engine cannot bound it: {exc}") from None
        self.note = f"whole-box interval Jacobian ({why})"
        return table[:, :, 0] * (1 + ROUNDING)

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        lip = self.table(tuple(x.shape[1:]), z.shape[1])[y][:, :, None]  # (n, K, 1), float64
        knots = self.whole_box_knots(x, lip)
        return ShellBound.from_margins(lip, knots, z.to(lip.dtype), y, self.losses)
