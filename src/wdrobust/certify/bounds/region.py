"""The input regions of the bound engine: a box intersected with a norm ball, one per batch row.

A ``Region`` is the set X_b = {x in [lo_b, hi_b] : ||x - x0_b|| <= r_b} for each row b, with x0_b in
[lo_b, hi_b]; lo, hi, x0 (B, *S), r (B,), one norm for the batch. Two constructors:
- ``Region.ball(x0, r, norm)``: the threat model's region B(x0_b, r_b) cap [0, 1]^d (the box is the ball's
  bounding box clipped to [0, 1]; for linf the region is that box);
- ``Region.box(lo, hi)``: a general box [lo_b, hi_b] in any input space (a VNN-LIB property's), with the
  enclosing linf ball around its centre, x0 = (lo + hi) / 2 and r = max (hi - lo) / 2, so the region is
  exactly the box.

The engine uses the box for interval propagation and concretisation, and the ball for the tightening of
the affine prefix and, for l2 and l1, for concretisation (``crown.concretize``). For linf the box lies
inside the ball (both constructors), so the box alone describes the region.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wdrobust.threat import dual_of


@dataclass(frozen=True)
class Region:
    """Rows of box-cap-ball input regions; see the module docstring."""

    lo: torch.Tensor
    hi: torch.Tensor
    x0: torch.Tensor
    r: torch.Tensor
    norm: str

    @classmethod
    def ball(cls, x0: torch.Tensor, r: torch.Tensor, norm: str) -> Region:
        """B(x0_b, r_b) cap [0, 1]^d; x0 (B, *S) in [0, 1], r (B,) >= 0."""
        dual_of(norm)  # a ValueError naming an unknown norm
        rr = r.reshape(-1, *([1] * (x0.dim() - 1)))
        return cls((x0 - rr).clamp(0, 1), (x0 + rr).clamp(0, 1), x0, r, norm)

    @classmethod
    def box(cls, lo: torch.Tensor, hi: torch.Tensor) -> Region:
        """The box [lo_b, hi_b]; lo, hi (B, *S) with lo <= hi (ValueError otherwise)."""
        if lo.shape != hi.shape or lo.dim() < 2:
            raise ValueError(
                f"box: lo and hi must share a shape (B, *S), got {tuple(lo.shape)}, {tuple(hi.shape)}"
            )
        if not bool((lo <= hi).all()):
            raise ValueError("box: some lower end lies above its upper end")
        half = (hi - lo) / 2
        return cls(lo, hi, lo + half, half.flatten(1).amax(dim=1), "linf")

    def __getitem__(self, rows: torch.Tensor | slice) -> Region:
        """The regions of the selected rows."""
        return Region(self.lo[rows], self.hi[rows], self.x0[rows], self.r[rows], self.norm)
