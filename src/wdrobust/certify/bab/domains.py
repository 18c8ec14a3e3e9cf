"""Branch-and-bound domains of one verification instance: ReLU split decisions and input sub-cubes.

A batch of D domains holds, per domain b, an input cube (centre c_b (*S), half-width h_b) whose region is
R_b = B_inf(c_b, h_b) cap X (X the property's region, ``property``), a box [lo_b, hi_b] per split node (the
pre-activations z of the ReLU-like activations) and the last upper bounds (C,) of the specification rows
(which rows are still open follows from them: ``BabProperty.open_rows``). Domain b is the set
D_b = {x in R_b : lo_b <= z(x) <= hi_b}. A ReLU split is a sign constraint, lo := max(lo, 0) (z >= 0) or hi :=
min(hi, 0) (z <= 0); the other entries are the parent's final bounds, sound on the parent's domain, so they
describe the same set and serve the child as known bounds (``engine``). Unstable neurons are those with lo < 0
< hi. The domains of a search always cover the instance's region minus what was proved: children cover (ReLU
split: z >= 0 or z <= 0; input split: the 2^d half cubes) their parent.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields

import torch

#: The per-split-node fields (lists of tensors).
BOXES = ("lo", "hi", "slopes")


@dataclass
class Domains:
    """A batch of D domains; see the module docstring. centre (D, *S), half (D,), lo / hi: per split node
    (D, n) flat pre-activation bounds, upper (D, C) float, split (D,) long: the split node of the last
    ReLU split (-1: none; the boxes of the nodes up to it are the parent's, final: ``engine``); depth (D,)
    long: ReLU splits since the root (``BabOptions.rebound``); slopes:
    per split node (D, C, n) float32 lower ReLU slopes of the output pass (NaN: none yet; ``engine``),
    inherited by the children, or empty (not optimised)."""

    centre: torch.Tensor
    half: torch.Tensor
    lo: list[torch.Tensor]
    hi: list[torch.Tensor]
    upper: torch.Tensor
    split: torch.Tensor
    depth: torch.Tensor
    slopes: list[torch.Tensor] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.half.shape[0])

    def take(self, idx: torch.Tensor) -> Domains:
        """The domains at indices idx (a long or bool tensor)."""
        return Domains(
            self.centre[idx],
            self.half[idx],
            [t[idx] for t in self.lo],
            [t[idx] for t in self.hi],
            self.upper[idx],
            self.split[idx],
            self.depth[idx],
            [t[idx] for t in self.slopes],
        )

    @staticmethod
    def cat(parts: list[Domains]) -> Domains:
        """The domains of all parts, in order."""
        out = {}
        for f in fields(Domains):
            vals = [getattr(p, f.name) for p in parts]
            out[f.name] = (
                [torch.cat(col) for col in zip(*vals, strict=True)] if f.name in BOXES else torch.cat(vals)
            )
        return Domains(**out)

    def with_bounds(self, lo: list[torch.Tensor], hi: list[torch.Tensor]) -> Domains:
        """The same domains with their boxes intersected with lo, hi (per split node (D, n)): bounds that
        are sound on each domain."""
        out = self.take(torch.arange(len(self), device=self.half.device))
        out.lo = [torch.maximum(a, b) for a, b in zip(self.lo, lo, strict=True)]
        out.hi = [torch.minimum(a, b) for a, b in zip(self.hi, hi, strict=True)]
        return out

    def split_relu(self, node: torch.Tensor, neuron: torch.Tensor) -> Domains:
        """The 2^m children of every domain for m neuron splits: domain b split on split node node[b, j],
        flat neuron neuron[b, j] (distinct neurons), j < m (node, neuron (D, m)); child b + D t has
        z >= 0 on split j when bit j of t is 0 (lo := max(lo, 0)), z <= 0 when it is 1 (hi := min(hi, 0)).
        Its split index is the earliest split node, min_j node[b, j], its depth the parent's plus m."""
        kids, nodes, neurons = self, node, neuron
        for j in range(node.shape[1]):
            kids = kids._split_one(nodes[:, j], neurons[:, j])
            nodes, neurons = torch.cat([nodes, nodes]), torch.cat([neurons, neurons])
        kids.split = node.amin(dim=1).repeat(2 ** node.shape[1])
        kids.depth = (self.depth + node.shape[1]).repeat(2 ** node.shape[1])
        return kids

    def _split_one(self, node: torch.Tensor, neuron: torch.Tensor) -> Domains:
        """Both children of every domain on one neuron per domain (node, neuron (D,)): z >= 0 in the first
        D children, z <= 0 in the last D."""
        kids = Domains.cat([self, self])
        d = len(self)
        rows = torch.arange(d, device=self.half.device)
        for i, (lo, hi) in enumerate(zip(kids.lo, kids.hi, strict=True)):
            sel = node == i
            r, k = rows[sel], neuron[sel]
            lo[r, k] = lo[r, k].clamp(min=0)
            hi[r + d, k] = hi[r + d, k].clamp(max=0)
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
