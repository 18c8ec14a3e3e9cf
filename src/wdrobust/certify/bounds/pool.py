"""Bound rules of pooling: average pooling (a linear map with non-negative weights) and max pooling.

AvgPool2d, AdaptiveAvgPool2d, mean: y = A x with A >= 0, so y in A c +- A r and the backward pass is
A^T (computed as the vector-Jacobian product of the same operation).
MaxPool2d: y = max of a window. Forward: [max lo, max hi] per window. Derivative: a one-hot selection
of the window's winner; an input can win only if its upper bound reaches the largest lower bound of the
window, so its coefficient lies in [0, 1] when several inputs can win and is exactly 1 (the others 0)
when only one can. Global facts: every input of a window may win (derivative in [0, 1]); in l2 the
map is sqrt(n)-Lipschitz with n = prod_i ceil(k_i / s_i) the most windows an input lies in, since
|max_w u - max_w u'| <= ||(u - u')_w||_2 and the squares of all windows count each input at most n times.
Linear relaxation (DeepPoly's planes, for linear bound propagation): with w* the window entry of largest
lower bound, y >= x_w* always (y is the max of the window); above, y = x_w* exactly when w* is the only
entry that can win (every other hi < lo_w*), else y <= max_w hi_w (a constant plane).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wdrobust.certify.bounds.interval import Box, Cot, Slopes, map_classes, scale
from wdrobust.certify.bounds.rule import LinearUpper, Rule, interval_arg, register, unsupported


@register(nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, F.avg_pool2d)
@register(F.adaptive_avg_pool2d, torch.mean, "mean", "sum", torch.sum)
class NonNegativeLinearRule(Rule):
    """A linear map with non-negative weights (averages and sums over axes other than the batch)."""

    affine = True

    def forward(self, *args: Any, **kwargs: Any) -> Box:
        x = interval_arg(self, args)
        self.n_args = len(args)
        self.in_shape = x.lo.shape[1:]
        self.apply = lambda v: self.call(v, *args[1:], **kwargs)
        out = Box(self.apply(x.lo), self.apply(x.hi))
        if out.lo.dim() == 0 or out.lo.shape[0] != x.lo.shape[0]:
            raise unsupported(f"{getattr(self.op, '__name__', self.op)}", self.name, "it reduces the batch")
        return out

    def transpose(self, v: torch.Tensor) -> torch.Tensor:
        """A^T v as the vector-Jacobian product of the (linear) operation."""
        with torch.enable_grad():
            z = torch.zeros((v.shape[0], *self.in_shape), dtype=v.dtype, device=v.device, requires_grad=True)
            (g,) = torch.autograd.grad(self.apply(z), z, v)
        return g

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        return (map_classes(cot, self.transpose), *((None,) * (self.n_args - 1)))


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


@register(nn.MaxPool2d, F.max_pool2d)
class MaxPoolRule(Rule):
    """2-D max pooling (dilation 1, ceil_mode False) with the winner-selection derivative interval."""

    nonlinear = True
    relaxed = True

    def _params(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        if isinstance(self.op, nn.MaxPool2d):
            m = self.op
            k, s, p, d, ceil, ret = (
                m.kernel_size,
                m.stride,
                m.padding,
                m.dilation,
                m.ceil_mode,
                m.return_indices,
            )
        else:
            names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
            vals = dict(zip(names, (None, None, 0, 1, False, False), strict=True))
            vals.update(zip(names, args, strict=False))
            vals.update(kwargs)
            k, s, p, d, ceil, ret = (vals[n] for n in names)
        s = k if s is None or s == [] else s
        if _pair(d) != (1, 1) or ceil or ret:
            raise unsupported("MaxPool2d", self.name, "only dilation 1, ceil_mode False, no indices")
        return _pair(k), _pair(s), _pair(p)

    def forward(self, *args: Any, **kwargs: Any) -> Box:
        x = interval_arg(self, args)
        self.n_args = len(args)
        self.k, self.s, self.p = self._params(args[1:], kwargs)
        b, c, h, w = x.lo.shape
        self.padded = (h + 2 * self.p[0], w + 2 * self.p[1])
        self.in_shape = x.lo.shape[1:]
        lo, hi = self.windows(x.lo), self.windows(x.hi)
        best_lo = lo.amax(dim=2, keepdim=True)
        can_win = hi >= best_lo
        certain = can_win.sum(dim=2, keepdim=True) == 1
        self.slopes = Slopes((can_win & certain).to(x.lo.dtype), can_win.to(x.lo.dtype))
        self.stable = certain.reshape(b, -1).all(dim=1)
        out_hw = (
            (h + 2 * self.p[0] - self.k[0]) // self.s[0] + 1,
            (w + 2 * self.p[1] - self.k[1]) // self.s[1] + 1,
        )
        return Box(best_lo.reshape(b, c, *out_hw), hi.amax(dim=2).reshape(b, c, *out_hw))

    def windows(self, t: torch.Tensor) -> torch.Tensor:
        """The pooling windows of t (B, c, h, w) padded with -inf: (B, c, k*k, L), L = Ho * Wo."""
        t = F.pad(t, (self.p[1], self.p[1], self.p[0], self.p[0]), value=-math.inf)
        return F.unfold(t, self.k, stride=self.s).reshape(t.shape[0], t.shape[1], self.k[0] * self.k[1], -1)

    def fold(self, t: torch.Tensor) -> torch.Tensor:
        """The adjoint of ``windows`` (without the padding): window entries (N, c, k*k, L) summed back onto
        the input positions (N, c, h, w)."""
        n, c = t.shape[:2]
        h, w = self.in_shape[1:]
        out = F.fold(t.reshape(n, c * self.k[0] * self.k[1], -1), self.padded, self.k, stride=self.s)
        return out[:, :, self.p[0] : self.p[0] + h, self.p[1] : self.p[1] + w]

    def use_global_slopes(self) -> None:
        """Any input of a window may be its winner: derivatives in [0, 1]."""
        self.slopes = Slopes(torch.zeros_like(self.slopes.lo), torch.ones_like(self.slopes.lo))

    def l2_gain(self) -> float:
        """sqrt(prod_i ceil(k_i / s_i)) (module docstring)."""
        return math.sqrt(math.prod(-(-k // s) for k, s in zip(self.k, self.s, strict=True)))

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        b, n = cot.center.shape[:2]
        c = self.in_shape[0]

        def spread(t: torch.Tensor) -> torch.Tensor:  # (B, C_cls, c, Ho, Wo) -> (B, C_cls, c, k*k, L)
            return t.reshape(b, n, c, 1, -1).expand(-1, -1, -1, self.k[0] * self.k[1], -1)

        win = scale(Cot(spread(cot.center), None if cot.radius is None else spread(cot.radius)), self.slopes)

        def fold(t: torch.Tensor) -> torch.Tensor:
            return self.fold(t.reshape(b * n, *t.shape[2:])).reshape(b, n, *self.in_shape)

        radius = None if win.radius is None else fold(win.radius)
        return (Cot(fold(win.center), radius), *((None,) * (self.n_args - 1)))

    def relax(self, inputs: list[Box | None], upper: LinearUpper | None = None) -> PoolRelaxation:
        """DeepPoly's planes on the box of the input (module docstring)."""
        x = inputs[0]
        assert x is not None
        lo, hi = self.windows(x.lo), self.windows(x.hi)
        best_lo, winner = lo.max(dim=2, keepdim=True)
        others_hi = hi.scatter(2, winner, -math.inf).amax(dim=2, keepdim=True)
        exact = others_hi < best_lo
        top = torch.where(exact, torch.zeros_like(best_lo), hi.amax(dim=2, keepdim=True))
        return PoolRelaxation(winner, exact, top)

    def linear_backward(
        self, lam: torch.Tensor, rel: PoolRelaxation
    ) -> tuple[tuple[torch.Tensor | None, ...], torch.Tensor]:
        """lam . y <= lam+ . (x_w* [exact] + top [not exact]) + lam- . x_w*: the winner's coefficient is lam
        where exact and lam- elsewhere; the bias is lam+ . top (lam (B, C, c, Ho, Wo))."""
        b, n, c = lam.shape[:3]
        flat = lam.reshape(b, n, c, 1, -1)
        exact = rel.exact.unsqueeze(1)
        coef = torch.where(exact, flat, flat.clamp(max=0))
        bias = (flat.clamp(min=0) * rel.top.unsqueeze(1)).flatten(2).sum(dim=2)
        kk = self.k[0] * self.k[1]
        spread = flat.new_zeros((b, n, c, kk, flat.shape[-1]))
        spread.scatter_(3, rel.winner.unsqueeze(1).expand(-1, n, -1, -1, -1), coef)
        g = self.fold(spread.reshape(b * n, c, kk, -1)).reshape(b, n, *self.in_shape)
        return (g, *((None,) * (self.n_args - 1))), bias


@dataclass
class PoolRelaxation:
    """Max pooling planes per window (B, c, 1, L): the entry of largest lower bound (``winner``, an index
    into the window), whether it is the only one that can win (``exact``), the constant upper plane
    (``top``, 0 where exact)."""

    winner: torch.Tensor
    exact: torch.Tensor
    top: torch.Tensor
