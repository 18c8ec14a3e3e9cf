"""Interval values of the bound engine: forward boxes and backward interval cotangents.

A forward ``Box`` holds elementwise bounds lo <= v <= hi of one graph value over the input region, shape
(B, *S) with B = samples x radii. Boxes are stored batch-first; ``batch_dim`` records where the batch axis
sits in the value as the model computes it (a permute such as the head split of attention moves it), so
that the layout rules (permute, transpose, indexing) can translate their axes; every other rule needs 0.
A backward ``Cot`` holds an interval vector of gradients of the margins m_j with respect to that value, in
midpoint-radius form center +- radius, shape (B, C, *S) with C classes; radius None means the interval is a
single point (exact).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Box:
    """Elementwise bounds lo <= v <= hi, both shape (B, *S) (batch first; see ``batch_dim``)."""

    lo: torch.Tensor
    hi: torch.Tensor
    batch_dim: int = 0

    @property
    def center(self) -> torch.Tensor:
        """(lo + hi) / 2."""
        return (self.lo + self.hi) / 2

    @property
    def radius(self) -> torch.Tensor:
        """(hi - lo) / 2 (>= 0)."""
        return (self.hi - self.lo) / 2

    @classmethod
    def from_center(cls, center: torch.Tensor, radius: torch.Tensor) -> Box:
        """The box center +- radius."""
        return cls(center - radius, center + radius)

    def intersect(self, lo: torch.Tensor, hi: torch.Tensor) -> Box:
        """The box cap [lo, hi] (both boxes contain the true values, so the intersection does too)."""
        return Box(torch.maximum(self.lo, lo), torch.minimum(self.hi, hi), self.batch_dim)


@dataclass
class Cot:
    """Interval cotangent center +- radius, shape (B, C, *S); radius None means exactly center."""

    center: torch.Tensor
    radius: torch.Tensor | None = None

    def __add__(self, other: Cot) -> Cot:
        """Interval sum (exact for sums of the two intervals)."""
        if self.radius is None:
            radius = other.radius
        elif other.radius is None:
            radius = self.radius
        else:
            radius = self.radius + other.radius
        return Cot(self.center + other.center, radius)

    def __neg__(self) -> Cot:
        return Cot(-self.center, self.radius)

    def magnitude(self) -> torch.Tensor:
        """max(|lo|, |hi|) = |center| + radius, elementwise."""
        mag = self.center.abs()
        return mag if self.radius is None else mag + self.radius


def lift(t: torch.Tensor, box_ndim: int) -> torch.Tensor:
    """Insert the class axis into a per-sample tensor (B, *S) -> (B, 1, *S) so it broadcasts over cots.

    Constant tensors with fewer dimensions than the box broadcast over trailing axes and are returned as is.
    """
    return t.unsqueeze(1) if t.dim() == box_ndim else t


def map_classes(cot: Cot, fn: Fn, abs_fn: Fn | None = None) -> Cot:
    """Apply a linear map fn (acting on (B', *S)) to each class slice of a cot (B, C, *S).

    The center goes through fn, the radius through abs_fn (the map with absolute weights, |A|^T r);
    abs_fn None means fn itself has non-negative weights.
    """
    b, c = cot.center.shape[:2]

    def apply(f: Fn, t: torch.Tensor) -> torch.Tensor:
        out = f(t.reshape(b * c, *t.shape[2:]))
        return out.reshape(b, c, *out.shape[1:])

    radius = None if cot.radius is None else apply(abs_fn or fn, cot.radius)
    return Cot(apply(fn, cot.center), radius)


@dataclass
class Slopes:
    """An interval [lo, hi] of elementwise derivatives D of a graph value, shape (B, *S).

    Precomputed once per forward pass for the backward pass: the midpoint-radius form ``mid +- rad``
    lifted over the class axis (B, 1, *S), ``nonneg`` (lo >= 0 everywhere: ReLU, LeakyReLU, ELU, max
    pooling) and ``exact`` (lo == hi everywhere).
    """

    lo: torch.Tensor
    hi: torch.Tensor

    def __post_init__(self) -> None:
        self.mid = ((self.lo + self.hi) / 2).unsqueeze(1)
        self.rad = ((self.hi - self.lo) / 2).unsqueeze(1)
        self.nonneg = bool((self.lo >= 0).all())
        self.exact = not bool(self.rad.any())


def scale(cot: Cot, d: Slopes) -> Cot:
    """Interval product D * v for D in [d.lo, d.hi] (lifted over classes) and v in cot (exact hull).

    Point v: D v = mid v +- rad |v|. Interval v = c +- r with D >= 0 (``scale_nonneg``), else the hull of
    the four endpoint products (``scale_hull``). The cot's shape must contain d's broadcast (B, 1, *S).
    """
    if cot.radius is None:
        return Cot(d.mid * cot.center, None if d.exact else cot.center.abs().mul_(d.rad))
    return scale_nonneg(cot, d) if d.nonneg else scale_hull(cot, d)


def scale_nonneg(cot: Cot, d: Slopes) -> Cot:
    """D * v for 0 <= d.lo <= D <= d.hi and v = c +- r, in midpoint-radius form (exact hull):

        center = mid c + rad clamp(c, -r, r),   radius = mid r + rad max(|c|, r).

    (If v >= 0 the product is [lo vl, hi vu]; if v <= 0, [hi vl, lo vu]; if 0 in v, hi v; the formulas
    above restate these three cases.) An exact D (rad = 0) gives mid c +- mid r. Computed in place on
    two new tensors of the cot's shape.
    """
    c, r = cot.center, cot.radius
    assert r is not None
    if d.exact:
        return Cot(d.mid * c, d.mid * r)
    center = torch.neg(r)
    torch.clamp(c, min=center, max=r, out=center)
    center.mul_(d.rad).addcmul_(d.mid, c)
    radius = c.abs()
    torch.maximum(radius, r, out=radius)
    radius.mul_(d.rad).addcmul_(d.mid, r)
    return Cot(center, radius)


def scale_hull(cot: Cot, d: Slopes) -> Cot:
    """D * v for any D in [d.lo, d.hi] and v = c +- r: the hull of the four endpoint products."""
    assert cot.radius is not None
    dlo, dhi = d.lo.unsqueeze(1), d.hi.unsqueeze(1)
    vlo = cot.center - cot.radius
    vhi = cot.center + cot.radius
    p1, p2, p3, p4 = dlo * vlo, dlo * vhi, dhi * vlo, dhi * vhi
    lo = torch.minimum(torch.minimum(p1, p2), torch.minimum(p3, p4))
    hi = torch.maximum(torch.maximum(p1, p2), torch.maximum(p3, p4))
    return Cot((lo + hi) / 2, (hi - lo) / 2)
