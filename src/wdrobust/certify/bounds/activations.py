"""The activation table and its bound rule: ReLU, LeakyReLU, GELU (exact erf form), SiLU, ELU, Tanh, Sigmoid.

Every fact about an activation lives in its ``Activation`` entry: the value and derivative, their special
points, sup |sigma'| over the real line (``sup_slope``, the global certificate's derivative bound) and what
the linear relaxations need (``bounds.relax``). Adding an activation is one entry here, one branch of
``activation_of`` and one key in the ``register`` lines below.

On an interval [l, u] the value range and the derivative range are hulls of sigma (resp. sigma') at l, u
and at the special points inside [l, u]:
- value: the stationary points of sigma (GELU and SiLU have one minimum each; the others are monotone);
- derivative: the stationary points of sigma' (its extrema) and the jumps of sigma' with both one-sided
  values. ReLU: jump at 0 with {0, 1}; LeakyReLU(a): jump at 0 with {a, 1}; ELU(alpha): jump at 0 with
  {alpha, 1}, monotone elsewhere; GELU: sigma'(x) = Phi(x) + x phi(x), sigma''(x) = phi(x)(2 - x^2), so
  the extrema of sigma' are at +-sqrt(2); SiLU: sigma'(x) = s(x)(1 + x(1 - s(x))), sigma''(x) =
  s(1 - s)(2 + x(1 - 2s)) vanishes at +-SILU_DERIV_CRIT (found numerically, checked by a test); Tanh:
  sigma' = 1 - tanh^2, Sigmoid: sigma' = s(1 - s), both monotone with sigma' largest at 0 (1 and 1/4).
- sup |sigma'|: ReLU, Tanh: 1; Sigmoid: 1/4; LeakyReLU(a): max(1, |a|); ELU(alpha): max(1, alpha);
  GELU: 1.1290 (true max GELU'(sqrt 2) = 1.12890); SiLU: 1.0999 (true max SiLU'(2.39936) = 1.09984).
  The last two are rounded up, so each value is an upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wdrobust.certify.bounds.interval import Box, Cot, Slopes, scale
from wdrobust.certify.bounds.rule import Rule, interval_arg, register, unsupported

Fn = Callable[[torch.Tensor], torch.Tensor]

#: Minimiser of GELU(x) = x Phi(x): the root of Phi(x) + x phi(x) = 0.
GELU_MIN = -0.7517915241
#: Minimiser of SiLU(x) = x s(x): the root of 1 + x (1 - s(x)) = 0.
SILU_MIN = -1.2784645428
#: Extrema of GELU': sigma''(x) = phi(x)(2 - x^2) = 0.
GELU_DERIV_CRIT = math.sqrt(2.0)
#: Extrema of SiLU': the positive root of 2 + x (1 - 2 s(x)) = 0 (and its negative).
SILU_DERIV_CRIT = 2.3993572805
#: sup |GELU''| = sup |phi(x)(2 - x^2)| = 2 phi(0) = 0.79788..., rounded up.
GELU_CURVATURE = 0.7979
#: sup |SiLU''| = sup |s(1 - s)(2 + x(1 - 2s))| = 1/2 (at x = 0), rounded up.
SILU_CURVATURE = 0.5001
#: sup |GELU'| = GELU'(sqrt 2) = 1.128904..., rounded up.
GELU_SUP_SLOPE = 1.1290
#: sup |SiLU'| = SiLU'(SILU_DERIV_CRIT) = 1.099839..., rounded up.
SILU_SUP_SLOPE = 1.0999
#: sup |tanh''| = sup 2 |t| (1 - t^2) = 4 / (3 sqrt 3) = 0.769800... (at t = 1/sqrt 3), rounded up.
TANH_CURVATURE = 0.7699
#: sup |sigmoid''| = sup s(1 - s)|1 - 2s| = 1 / (6 sqrt 3) = 0.096225... , rounded up.
SIGMOID_CURVATURE = 0.0963


#: Closed-form bounds over [lo, hi]: (value lo, value hi, derivative lo, derivative hi).
ClosedForm = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]


@dataclass(frozen=True)
class Activation:
    """sigma, sigma', the stationary points of sigma, the special points of sigma' with their values,
    ``sup_slope`` >= sup |sigma'| over the real line, optionally a cheaper closed form of the same bounds
    (``closed_form``, equal to the hull), and for the
    linear relaxations: ``curvature`` >= sup |sigma''| away from the kinks (0 for piecewise-linear
    activations), ``kinks`` (points where sigma' jumps) and ``relu_slope`` (s when sigma(x) = max(x, 0) +
    s min(x, 0) with 0 <= s <= 1, which has a closed-form relaxation; None otherwise)."""

    value: Fn
    derivative: Fn
    value_points: tuple[float, ...]
    derivative_points: tuple[tuple[float, tuple[float, ...]], ...]
    sup_slope: float
    closed_form: ClosedForm | None = None
    curvature: float = 0.0
    kinks: tuple[float, ...] = ()
    relu_slope: float | None = None


def _gelu_deriv(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(x / math.sqrt(2.0))) + x * torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _silu_deriv(x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(x)
    return s * (1 + x * (1 - s))


def _point(fn: Fn, x: float) -> float:
    return float(fn(torch.tensor(x, dtype=torch.float64)))


def piecewise_linear(slope: float) -> Activation:
    """max(x, 0) + slope min(x, 0): derivative slope for x < 0 and 1 for x > 0.

    For 0 <= slope <= 1 sigma is increasing and sigma' nondecreasing, so the hull has the closed form
    [sigma(lo), sigma(hi)] and [sigma'(lo+), sigma'(hi-)] = [1 if lo > 0 else slope, 1 if hi >= 0 else slope]
    (the jump at 0 counts with both one-sided values when 0 is in [lo, hi]).
    """

    def closed_form(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if slope == 0.0:
            return lo.clamp(min=0), hi.clamp(min=0), (lo > 0).to(lo.dtype), (hi >= 0).to(lo.dtype)
        vlo, vhi = torch.maximum(lo, slope * lo), torch.maximum(hi, slope * hi)
        dlo = (lo > 0).to(lo.dtype).mul_(1 - slope).add_(slope)
        dhi = (hi >= 0).to(lo.dtype).mul_(1 - slope).add_(slope)
        return vlo, vhi, dlo, dhi

    return Activation(
        value=lambda x: torch.where(x > 0, x, slope * x),
        derivative=lambda x: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope)),
        value_points=(),
        derivative_points=((0.0, (slope, 1.0)),),
        sup_slope=max(1.0, abs(slope)),
        closed_form=closed_form if 0.0 <= slope <= 1.0 else None,
        kinks=(0.0,),
        relu_slope=slope if 0.0 <= slope <= 1.0 else None,
    )


def elu(alpha: float) -> Activation:
    """x for x > 0, alpha (e^x - 1) otherwise (alpha > 0); derivative 1 or alpha e^x."""
    return Activation(
        value=lambda x: torch.where(x > 0, x, alpha * torch.expm1(x.clamp(max=0))),
        derivative=lambda x: torch.where(x > 0, torch.ones_like(x), alpha * torch.exp(x.clamp(max=0))),
        value_points=(),
        derivative_points=((0.0, (alpha, 1.0)),),
        sup_slope=max(1.0, alpha),
        curvature=alpha,  # sigma'' = alpha e^x on x < 0, 0 on x > 0
        kinks=(0.0,),
    )


GELU = Activation(
    value=lambda x: F.gelu(x),
    derivative=_gelu_deriv,
    value_points=(GELU_MIN,),
    derivative_points=tuple((c, (_point(_gelu_deriv, c),)) for c in (-GELU_DERIV_CRIT, GELU_DERIV_CRIT)),
    sup_slope=GELU_SUP_SLOPE,
    curvature=GELU_CURVATURE,
)
SILU = Activation(
    value=lambda x: F.silu(x),
    derivative=_silu_deriv,
    value_points=(SILU_MIN,),
    derivative_points=tuple((c, (_point(_silu_deriv, c),)) for c in (-SILU_DERIV_CRIT, SILU_DERIV_CRIT)),
    sup_slope=SILU_SUP_SLOPE,
    curvature=SILU_CURVATURE,
)
TANH = Activation(
    value=torch.tanh,
    derivative=lambda x: 1 - torch.tanh(x).square(),
    value_points=(),
    derivative_points=((0.0, (1.0,)),),
    sup_slope=1.0,
    curvature=TANH_CURVATURE,
)
SIGMOID = Activation(
    value=torch.sigmoid,
    derivative=lambda x: torch.sigmoid(x) * torch.sigmoid(-x),
    value_points=(),
    derivative_points=((0.0, (0.25,)),),
    sup_slope=0.25,
    curvature=SIGMOID_CURVATURE,
)


def hull(fn: Fn, lo: torch.Tensor, hi: torch.Tensor, points: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """[min, max] of {fn(lo), fn(hi)} and of the given values at the points x_c with lo <= x_c <= hi.

    points: iterable of (x_c, values at x_c). Exact for fn continuous and monotone between the points.
    """
    a, b = fn(lo), fn(hi)
    low, high = torch.minimum(a, b), torch.maximum(a, b)
    for x_c, values in points:
        inside = (lo <= x_c) & (x_c <= hi)
        for v in values:
            low = torch.where(inside, torch.clamp(low, max=v), low)
            high = torch.where(inside, torch.clamp(high, min=v), high)
    return low, high


def bound_activation(act: Activation, x: Box) -> tuple[Box, torch.Tensor, torch.Tensor]:
    """(range box of sigma over x, lower and upper bounds of sigma' over x): the closed form when the
    activation has one, else ``hull_bounds``."""
    if act.closed_form is None:
        return hull_bounds(act, x)
    vlo, vhi, dlo, dhi = act.closed_form(x.lo, x.hi)
    return Box(vlo, vhi), dlo, dhi


def hull_bounds(act: Activation, x: Box) -> tuple[Box, torch.Tensor, torch.Tensor]:
    """(range box of sigma over x, lower and upper bounds of sigma' over x) from the hulls at the ends and
    at the special points (any activation)."""
    vpoints = [(c, (_point(act.value, c),)) for c in act.value_points]
    vlo, vhi = hull(act.value, x.lo, x.hi, vpoints)
    dlo, dhi = hull(act.derivative, x.lo, x.hi, act.derivative_points)
    return Box(vlo, vhi), dlo, dhi


def activation_of(op: Any, name: str, kwargs: dict[str, Any]) -> Activation:
    """The Activation of a module, function or method, checking the options it is called with."""
    if isinstance(op, nn.Module):
        opts = {k: getattr(op, k) for k in ("negative_slope", "alpha", "approximate") if hasattr(op, k)}
        kind = type(op).__name__.lower()
    else:
        opts = dict(kwargs)
        kind = getattr(op, "__name__", str(op)).lower().replace("_", "")
    if opts.get("approximate", "none") != "none":
        raise unsupported("GELU(approximate='tanh')", name, "only the exact erf form")
    if kind in ("relu",):
        return piecewise_linear(0.0)
    if kind in ("leakyrelu",):
        return piecewise_linear(float(opts.get("negative_slope", 0.01)))
    if kind == "elu":
        alpha = float(opts.get("alpha", 1.0))
        if alpha <= 0:
            raise unsupported(f"ELU(alpha={alpha})", name, "alpha must be positive")
        return elu(alpha)
    if kind == "gelu":
        return GELU
    if kind == "silu":
        return SILU
    if kind == "tanh":
        return TANH
    if kind == "sigmoid":
        return SIGMOID
    raise unsupported(kind, name)


@register(nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Tanh, nn.Sigmoid, F.relu, torch.relu, "relu")
@register(F.leaky_relu, F.gelu, F.silu, F.elu)
@register(torch.tanh, F.tanh, "tanh", torch.sigmoid, F.sigmoid, "sigmoid")
class ActivationRule(Rule):
    """sigma applied elementwise; backward multiplies by the derivative interval [sigma'_lo, sigma'_hi].
    Global facts: sigma' in [-s, s] and l2 gain s, s = ``Activation.sup_slope``."""

    nonlinear = True

    def forward(self, *args: Any, **kwargs: Any) -> Box:
        x = interval_arg(self, args)
        if len(args) > 1:
            names = {F.leaky_relu: "negative_slope", F.elu: "alpha"}
            if self.op not in names:
                raise unsupported(getattr(self.op, "__name__", str(self.op)), self.name, "extra arguments")
            kwargs = {names[self.op]: args[1], **kwargs}
        kwargs.pop("inplace", None)
        self.n_args = len(args)
        self.activation = activation_of(self.op, self.name, kwargs)
        out, dlo, dhi = bound_activation(self.activation, x)
        self.slopes = Slopes(dlo, dhi)
        self.stable = (dlo == dhi).reshape(x.lo.shape[0], -1).all(dim=1)
        return out

    def use_global_slopes(self) -> None:
        """sigma' in [-s, s] everywhere, s = sup |sigma'|."""
        s = torch.full_like(self.slopes.lo, self.activation.sup_slope)
        self.slopes = Slopes(-s, s)

    def l2_gain(self) -> float:
        """sup |sigma'| (elementwise, so the same in every norm)."""
        return self.activation.sup_slope

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        return (scale(cot, self.slopes), *((None,) * (self.n_args - 1)))
