"""Linear relaxations of operations that act on the rows (last axis) of a value: softmax, LayerNorm.

For every output entry i of a row x (n,), a pair of affine functions of the same row,

    w_lo_i . x + b_lo_i  <=  y_i(x)  <=  w_up_i . x + b_up_i,

stored as w (N, *L, n, n) (index [..., i, j]: the coefficient of x_j in the bound of y_i) and b (N, *L, n).
``choose`` replaces a bound by the constant interval bound where that is lower (upper bound) or higher
(lower bound) at the centre of the row's box, i.e. on average over the box; both are sound.
Backward: lam . y <= (lam+ w_up + lam- w_lo) . x + lam+ . b_up + lam- . b_lo.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wdrobust.certify.bounds.interval import Box


@dataclass
class RowRelaxation:
    """Affine bounds of y over its input rows; see the module docstring. Shapes (N, *L, n, n), (N, *L, n)."""

    w_lo: torch.Tensor
    b_lo: torch.Tensor
    w_up: torch.Tensor
    b_up: torch.Tensor

    def backward(self, lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(coefficients (N, C, *L, n) on the input, bias (N, C)) for lam (N, C, *L, n)."""
        pos, neg = lam.clamp(min=0), lam.clamp(max=0)
        coef = torch.einsum("nc...i,n...ij->nc...j", pos, self.w_up)
        coef = coef + torch.einsum("nc...i,n...ij->nc...j", neg, self.w_lo)
        bias = torch.einsum("nc...i,n...i->nc", pos, self.b_up) + torch.einsum(
            "nc...i,n...i->nc", neg, self.b_lo
        )
        return coef, bias


def choose(rel: RowRelaxation, x: Box, out: Box) -> RowRelaxation:
    """Per entry, the affine bound or the constant bound out.lo / out.hi, whichever is better at the
    centre of the input box x (rows on the last axis)."""
    centre = x.center.unsqueeze(-2)  # (N, *L, 1, n)
    up_mid = (rel.w_up * centre).sum(dim=-1) + rel.b_up
    lo_mid = (rel.w_lo * centre).sum(dim=-1) + rel.b_lo
    keep_up = (up_mid < out.hi) & torch.isfinite(up_mid)
    keep_lo = (lo_mid > out.lo) & torch.isfinite(lo_mid)
    zero = torch.zeros_like(rel.w_up)
    return RowRelaxation(
        torch.where(keep_lo.unsqueeze(-1), rel.w_lo, zero),
        torch.where(keep_lo, rel.b_lo, out.lo),
        torch.where(keep_up.unsqueeze(-1), rel.w_up, zero),
        torch.where(keep_up, rel.b_up, out.hi),
    )
