"""Boxes of correlated values for the tests of refined relaxations: x = A z + b over a box of z (as the
values inside a network are over its input region), with sampled points and the exact linear upper bound
``upper(0, spec) = max over the box of z of spec . x`` that ``Rule.relax`` accepts."""

from __future__ import annotations

from collections.abc import Callable

import torch

from wdrobust.certify.bounds.interval import Box


def affine_image(
    g: torch.Generator, rows: int, shape: tuple[int, ...], spread: float, dims: int = 4, k: int = 400
) -> tuple[Box, torch.Tensor, Callable[[int, torch.Tensor], torch.Tensor]]:
    """(box of x (rows, *shape), k points (k, rows, *shape) half of them from corners of z, upper) for
    x = A z + b, A (rows, m, dims) and b (rows, m) random, z in a random box of half-widths <= spread."""
    m = int(torch.tensor(shape).prod())
    a = torch.randn(rows, m, dims, generator=g, dtype=torch.float64)
    b = torch.randn(rows, m, generator=g, dtype=torch.float64) * 2
    zc = torch.randn(rows, dims, generator=g, dtype=torch.float64)
    zr = torch.rand(rows, dims, generator=g, dtype=torch.float64) * spread
    center = (a @ zc.unsqueeze(-1)).squeeze(-1) + b
    radius = (a.abs() @ zr.unsqueeze(-1)).squeeze(-1)
    box = Box((center - radius).reshape(rows, *shape), (center + radius).reshape(rows, *shape))
    u = torch.rand(k, rows, dims, generator=g, dtype=torch.float64)
    u[: k // 2] = (u[: k // 2] > 0.5).double()
    z = zc - zr + 2 * zr * u
    pts = ((a @ z.unsqueeze(-1)).squeeze(-1) + b).reshape(k, rows, *shape)

    def upper(arg: int, spec: torch.Tensor) -> torch.Tensor:
        """max over the box of z of spec . (A z + b), exactly: w . zc + |w| . zr + spec . b, w = spec A."""
        assert arg == 0
        flat = spec.flatten(2)  # (rows, C, m)
        w = flat @ a  # (rows, C, dims)
        spread_ = (w * zc.unsqueeze(1) + w.abs() * zr.unsqueeze(1)).sum(dim=2)
        return spread_ + (flat * b.unsqueeze(1)).sum(dim=2)

    return box, pts, upper
