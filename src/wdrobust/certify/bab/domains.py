"""Branch-and-bound domains of one verification instance: ReLU split decisions and input sub-cubes.

A batch of D domains holds, per domain b, an input cube (centre c_b (*S), half-width h_b) whose region is
R_b = B_inf(c_b, h_b) cap [0,1]^d (cap the threat ball of the instance, checked for counterexamples), one
int8 decision per neuron of every split node (+1: z >= 0, -1: z <= 0, 0: free), the still-open
specification rows (C,) and the last upper bounds (C,). The domains of a search always cover the instance's
region minus what was proved: children partition (ReLU split: z >= 0 or z <= 0) or cover (input split:
the 2^d half cubes) their parent.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

import torch


@dataclass
class Domains:
    """A batch of D domains; see the module docstring. centre (D, *S), half (D,), splits: per split node
    (D, n) int8, open (D, C) bool, upper (D, C) float."""

    centre: torch.Tensor
    half: torch.Tensor
    splits: list[torch.Tensor]
    open: torch.Tensor
    upper: torch.Tensor

    def __len__(self) -> int:
        return int(self.half.shape[0])

    def take(self, idx: torch.Tensor) -> Domains:
        """The domains at indices idx (a long or bool tensor)."""
        return Domains(
            self.centre[idx], self.half[idx], [s[idx] for s in self.splits], self.open[idx], self.upper[idx]
        )

    @staticmethod
    def cat(parts: list[Domains]) -> Domains:
        """The domains of all parts, in order."""
        out = {}
        for f in fields(Domains):
            vals = [getattr(p, f.name) for p in parts]
            out[f.name] = (
                [torch.cat(col) for col in zip(*vals, strict=True)] if f.name == "splits" else torch.cat(vals)
            )
        return Domains(**out)

    def split_relu(self, node: torch.Tensor, neuron: torch.Tensor) -> Domains:
        """Both children of every domain: split node index node[b], flat neuron neuron[b] set to +1 in the
        first D children and -1 in the last D."""
        kids = Domains.cat([self, self])
        kids.splits = [s.clone() for s in kids.splits]
        d = len(self)
        sign = torch.cat([torch.ones(d, dtype=torch.int8), -torch.ones(d, dtype=torch.int8)])
        rows = torch.arange(2 * d)
        node2, neuron2 = node.repeat(2), neuron.repeat(2)
        for i, s in enumerate(kids.splits):
            sel = node2 == i
            s[rows[sel], neuron2[sel]] = sign[sel].to(s.device)
        return kids

    def split_input(self) -> Domains:
        """The 2^d half cubes of every domain (centres c +- h/2 along every axis, half-width h/2)."""
        d = self.centre[0].numel()
        corners = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=d)), dtype=self.centre.dtype)
        corners = corners.to(self.centre.device).reshape(-1, *self.centre.shape[1:])  # (2^d, *S)
        m = corners.shape[0]
        kids = self.take(torch.arange(len(self)).repeat_interleave(m))
        h = (self.half / 2).repeat_interleave(m)
        kids.centre = kids.centre + corners.repeat(len(self), *([1] * (corners.dim() - 1))) * _lift(
            h, corners
        )
        kids.half = h
        return kids


def _lift(h: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """h (D,) shaped to broadcast over rows of like (D, *S)."""
    return h.reshape(-1, *([1] * (like.dim() - 1)))
