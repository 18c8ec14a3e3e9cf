"""Sound linear relaxations of elementwise activations on pre-activation intervals (for linear bounds).

For sigma on [l, u] a relaxation is a pair of lines

    a_lo z + b_lo <= sigma(z) <= a_up z + b_up     for every z in [l, u].

- Piecewise-linear sigma(z) = max(z, 0) + s min(z, 0), 0 <= s <= 1 (ReLU, LeakyReLU; convex): stable
  intervals are exact (slope 1 or s); otherwise the upper line is the chord and the lower line passes
  through the origin with a slope in [s, 1] (adaptive: 1 when u >= -l, else s, the smaller-area choice of
  CROWN; alpha-CROWN optimises it).
- Any other sigma (GELU, SiLU, ELU; non-convex): for a chosen slope a, the offsets are the extrema of
  g(z) = sigma(z) - a z over [l, u], taken on a grid of G points with the ends, the kinks and the
  stationary points of sigma included, and widened by curvature * h^2 / 8 (h the grid spacing): where the
  extremum is at an interior point of a smooth piece, g' = 0 there and the nearest grid point (at most h/2
  away, on the same piece since kinks are grid points) is within curvature h^2 / 8 of it. The slopes are
  picked per neuron among the chord, sigma'(l) and sigma'(u) by the smaller area between line and curve.
All computations keep the dtype of the bounds (float64 in the certificates).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wdrobust.certify.bounds.activations import Activation

#: Grid points per interval for the offsets of non-piecewise-linear activations.
GRID = 33
#: Intervals narrower than this use the derivative at the midpoint as the slope (the chord is unstable).
NARROW = 1e-9


@dataclass
class Relaxation:
    """Lines a_lo z + b_lo <= sigma(z) <= a_up z + b_up on the interval, each (B, *S)."""

    a_lo: torch.Tensor
    b_lo: torch.Tensor
    a_up: torch.Tensor
    b_up: torch.Tensor


def relax(
    act: Activation, lo: torch.Tensor, hi: torch.Tensor, lower_slope: torch.Tensor | None = None
) -> Relaxation:
    """The relaxation of sigma on [lo, hi] (elementwise, any shape); see the module docstring.

    lower_slope: optional slopes of the lower line (alpha-CROWN); for piecewise-linear sigma they are
    clamped to [s, 1], for others any value is sound (the offset adapts).
    """
    if act.relu_slope is not None:
        return _relu_like(act.relu_slope, lo, hi, lower_slope)
    return _numeric(act, lo, hi, lower_slope)


def _relu_like(s: float, lo: torch.Tensor, hi: torch.Tensor, lower_slope: torch.Tensor | None) -> Relaxation:
    pos, neg = lo >= 0, hi <= 0
    unstable = ~(pos | neg)
    width = torch.where(unstable, hi - lo, torch.ones_like(lo))
    chord = (hi - s * lo) / width  # (sigma(u) - sigma(l)) / (u - l) on unstable neurons
    a_up = torch.where(pos, torch.ones_like(lo), torch.where(neg, torch.full_like(lo, s), chord))
    b_up = torch.where(unstable, (s - chord) * lo, torch.zeros_like(lo))
    if lower_slope is None:
        adaptive = torch.where(hi >= -lo, torch.ones_like(lo), torch.full_like(lo, s))
    else:
        adaptive = lower_slope.clamp(min=s, max=1.0)
    a_lo = torch.where(pos, torch.ones_like(lo), torch.where(neg, torch.full_like(lo, s), adaptive))
    return Relaxation(a_lo, torch.zeros_like(lo), a_up, b_up)


def _grid(act: Activation, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(points (..., G'), spacing (...,)): G equispaced points from lo to hi plus the kinks and stationary
    points of sigma (clamped into the interval)."""
    frac = torch.linspace(0.0, 1.0, GRID, dtype=lo.dtype, device=lo.device)
    pts = lo.unsqueeze(-1) + (hi - lo).unsqueeze(-1) * frac
    special = (*act.kinks, *act.value_points)
    extra = [torch.maximum(torch.minimum(torch.full_like(lo, c), hi), lo) for c in special]
    if extra:
        pts = torch.cat([pts, torch.stack(extra, dim=-1)], dim=-1)
    return pts, (hi - lo) / (GRID - 1)


def _offsets(
    act: Activation, pts: torch.Tensor, sig: torch.Tensor, h: torch.Tensor, a: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sound (min, max) of sigma(z) - a z over the interval from its values on the grid pts."""
    g = sig - a.unsqueeze(-1) * pts
    slack = act.curvature * h * h / 8
    tiny = 1e-12 * (1 + g.abs().amax(dim=-1))  # float64 rounding of the grid values
    return g.amin(dim=-1) - slack - tiny, g.amax(dim=-1) + slack + tiny


def _numeric(
    act: Activation, lo: torch.Tensor, hi: torch.Tensor, lower_slope: torch.Tensor | None
) -> Relaxation:
    pts, h = _grid(act, lo, hi)
    sig = act.value(pts)
    narrow = (hi - lo) < NARROW
    mid_slope = act.derivative((lo + hi) / 2)
    rise = act.value(hi) - act.value(lo)
    chord = torch.where(narrow, mid_slope, rise / torch.where(narrow, 1.0, hi - lo))
    candidates = [chord, act.derivative(lo), act.derivative(hi)]
    centre = (lo + hi) / 2
    best_up: tuple[torch.Tensor, torch.Tensor] | None = None
    best_lo: tuple[torch.Tensor, torch.Tensor] | None = None
    for a in candidates:
        g_min, g_max = _offsets(act, pts, sig, h, a)
        # mean height of the line over [l, u] is a * centre + b: smaller above, larger below is tighter
        if best_up is None:
            best_up, best_lo = (a, g_max), (a, g_min)
            continue
        better_up = a * centre + g_max < best_up[0] * centre + best_up[1]
        best_up = (torch.where(better_up, a, best_up[0]), torch.where(better_up, g_max, best_up[1]))
        better_lo = a * centre + g_min > best_lo[0] * centre + best_lo[1]
        best_lo = (torch.where(better_lo, a, best_lo[0]), torch.where(better_lo, g_min, best_lo[1]))
    assert best_up is not None and best_lo is not None
    if lower_slope is not None:
        best_lo = (lower_slope, _offsets(act, pts, sig, h, lower_slope)[0])
    return Relaxation(best_lo[0], best_lo[1], best_up[0], best_up[1])
