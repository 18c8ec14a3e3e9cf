"""Step geometry: steepest-ascent directions in the box, per-sample moves and the safe radius.

For a gradient g (m, *S) at x (m, *S) in [0, 1]^d, the box-feasible gradient g~ zeroes the coordinates
whose ascent would leave the box (g_k > 0 at x_k >= 1, g_k < 0 at x_k <= 0), and the unit step is the
dual-norm maximiser u* = argmax_{||u|| <= 1} <g~, u>:

    linf: u* = sign(g)        l2: u* = g~ / ||g~||_2        l1: u* = sign(g~_k) e_k at k = argmax |g~_k|

(linf takes sign(g) itself: its projection clamps to the box anyway), or the sparse l1 step sign(g~) on
the top ceil(sparsity d) coordinates, scaled to unit l1 norm. ``move`` takes x + eta_i u_i with per-sample
step sizes eta (m,). ``safe_radius`` shrinks a radius so that a projected point, stored in float32, is
never measured outside its ball. Every function maps (m, *S) tensors to (m, *S) tensors.
"""

from __future__ import annotations

import math

import torch

from wdrobust.threat import steepest


def safe_radius(radius: torch.Tensor) -> torch.Tensor:
    """radius (1 - 1e-5) - 1e-7, clamped at 0: a margin so float32 rounding of x0 + delta never lands
    outside the ball when the distance is recomputed from the stored points."""
    return (radius * (1.0 - 1e-5) - 1e-7).clamp(min=0.0)


def feasible(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """g zeroed where ascent leaves the box: g_k > 0 at x_k >= 1 or g_k < 0 at x_k <= 0."""
    blocked = ((g > 0) & (x >= 1.0)) | ((g < 0) & (x <= 0.0))
    return g.masked_fill(blocked, 0.0)


def steepest_step(g: torch.Tensor, x: torch.Tensor, norm: str, inplace: bool = False) -> torch.Tensor:
    """Dual-norm maximiser u* = argmax_{||u|| <= 1} <g~, u> of the box-feasible gradient g~ (``feasible``).

    linf: sign(g); l2: g~ / ||g~||_2; l1: signed one-hot at argmax |g~_k|. Shapes (m, *S) -> (m, *S).
    ``inplace`` (linf): the sign is written into g (for a gradient that nothing else holds).
    """
    if norm == "linf":
        return torch.sign(g, out=g) if inplace else torch.sign(g)
    return steepest(feasible(g, x), norm)


def sparse_l1_step(g: torch.Tensor, x: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Sparse l1 ascent direction (SLIDE-style): u = sign(g~) on the top-k coordinates by |g~|, scaled so
    ||u||_1 = 1, with k = max(1, ceil(sparsity * d)) and g~ the box-feasible gradient. (m, *S) -> (m, *S)."""
    flat = feasible(g, x).reshape(g.shape[0], -1)
    k = max(1, math.ceil(sparsity * flat.shape[1]))
    top = flat.abs().topk(k, dim=1)
    u = torch.zeros_like(flat)
    u.scatter_(1, top.indices, torch.sign(flat.gather(1, top.indices)))
    count = u.abs().sum(dim=1, keepdim=True).clamp(min=1.0)
    return (u / count).reshape(g.shape)


def direction(
    g: torch.Tensor, x: torch.Tensor, norm: str, sparsity: float | None = None, inplace: bool = False
) -> torch.Tensor:
    """Ascent direction of unit norm: the dual-norm maximiser, or the sparse top-k step for l1 when
    ``sparsity`` is given (PGD, APGD); ``inplace`` as in ``steepest_step``."""
    if norm == "l1" and sparsity is not None:
        return sparse_l1_step(g, x, sparsity)
    return steepest_step(g, x, norm, inplace)


def move(x: torch.Tensor, eta: torch.Tensor, u: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """x + eta_i u (m, *S) with per-sample step sizes eta (m,), in one fused pass (addcmul); ``inplace``
    writes it into the buffer of u (a direction that nothing else holds: no new (m, *S) tensor)."""
    return torch.addcmul(x, eta.reshape(-1, *([1] * (x.dim() - 1))), u, out=u if inplace else None)
