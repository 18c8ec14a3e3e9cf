"""What branch and bound decides: a conjunction of disjunctions of strict linear output inequalities.

A property holds on the input region X (a ``Region`` of one row: a box cap a norm ball) when for every x in
X every group g of specification rows has a row m with

    s_m(x) = spec_m . f(x) + offset_m < 0,

spec (C, K), offset (C,), group (C,) the group of each row in [0, G). A counterexample is an x in X where
some group has every row s_m(x) >= 0; ``violation`` = max_g min_{m in g} s_m(x) >= 0 says so.

- ``margin``: the robustness of label y on B(x0, r) cap [0,1]^d, rows e_j - e_y (j != y, increasing),
  one row per group: every margin z_j - z_y < 0.
- A VNN-LIB property (disjuncts k of rows C_k f + d_k <= 0, ``verify``) has rows -C_k, offsets -d_k and
  group k: disjunct k is refuted where some row C_km f + d_km > 0.

A group is refuted on a set of inputs when one of its rows has an upper bound < 0 there (``refuted``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wdrobust.certify.bounds.lipschitz import margin_cotangents
from wdrobust.certify.bounds.region import Region


@dataclass(frozen=True)
class BabProperty:
    """region (one row, *S of the network's input); spec (C, K), offset (C,) in the region's dtype;
    group (C,) long, every group in [0, G) used. See the module docstring."""

    region: Region
    spec: torch.Tensor
    offset: torch.Tensor
    group: torch.Tensor

    def __post_init__(self) -> None:
        c = self.spec.shape[0]
        if self.offset.shape != (c,) or self.group.shape != (c,) or c == 0:
            raise ValueError(f"bab: spec, offset and group need C > 0 matching rows, got {c}")
        if sorted(set(self.group.tolist())) != list(range(self.groups)):
            raise ValueError("bab: the groups of the rows must be 0 .. G-1, each used")

    @classmethod
    def margin(cls, x0: torch.Tensor, y: int, r: float, norm: str, k: int) -> BabProperty:
        """Label y (of k classes) is kept on B(x0, r) cap [0,1]^d; x0 (*S)."""
        _, spec = margin_cotangents(torch.tensor([y], device=x0.device), k)
        region = Region.ball(x0[None], torch.tensor([float(r)], dtype=x0.dtype, device=x0.device), norm)
        rows = spec[0].to(x0.dtype)
        return cls(region, rows, rows.new_zeros(k - 1), torch.arange(k - 1, device=x0.device))

    @property
    def groups(self) -> int:
        return int(self.group.max()) + 1

    @property
    def members(self) -> torch.Tensor:
        """(G, C) bool: row m belongs to group g."""
        return self.group[None, :] == torch.arange(self.groups, device=self.group.device)[:, None]

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        """s (P, C) = spec . z + offset for outputs z (P, K)."""
        return z @ self.spec.T + self.offset

    def violation(self, z: torch.Tensor) -> torch.Tensor:
        """(P,) max_g min_{m in g} s_m for outputs z (P, K): >= 0 exactly at counterexample outputs."""
        s = self.scores(z)[:, None, :]
        return torch.where(self.members, s, torch.inf).amin(dim=2).amax(dim=1)

    def refuted(self, upper: torch.Tensor) -> torch.Tensor:
        """(D, G) bool: some row of group g has upper < 0; upper (D, C) upper bounds of the rows."""
        proved = (upper < 0)[:, None, :] & self.members
        return proved.any(dim=2)

    def open_rows(self, upper: torch.Tensor) -> torch.Tensor:
        """(D, C) bool: the rows whose group is not refuted by upper (D, C)."""
        return (~self.refuted(upper))[:, self.group]

    def worst(self, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(score (D,), row (D,)): per domain the open group farthest from refutation (largest smallest
        row bound) -- score that bound, -inf when every group is refuted -- and its row of smallest bound
        (the row a split should push below zero)."""
        per = torch.where(self.members, upper[:, None, :], torch.inf)  # (D, G, C)
        best, row = per.min(dim=2)
        best = torch.where(self.refuted(upper), -torch.inf, best)
        score, g = best.max(dim=1)
        return score, row.gather(1, g[:, None])[:, 0]
