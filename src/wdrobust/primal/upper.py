"""Upper bound from sound growth majorants phibar_i >= phi_i, by Lagrangian (weak) duality.

For every lambda >= 0 and p < inf,

    R_p(eps) - R(0) <= D(lambda) = lambda eps^p + (1/N) sum_i sup_{t in [0, T_i]} (phibar_i(t) - lambda t^p),

T_i the last knot (the diameter of X). phibar_i is piecewise linear, so the inner sup is exact: on each
segment c + a (t - lo) - lambda t^p is concave with stationary point t* = (a / (p lambda))^(1/(p-1)),
clipped to the segment; the cap truncates the domain where phibar first reaches it (slopes are >= 0), and
the value there is the cap. D is convex in lambda with subgradient eps^p - mean_i t_i(lambda)^p; it is
minimised by safeguarded regula falsi on that subgradient over log lambda. Every evaluated lambda is a
sound bound and the smallest is returned.

Special cases: p = inf gives mean_i phibar_i(eps) exactly; p = 1 gives the exact dual optimum (the
concave hull of the piecewise-linear phibar is that of its vertices, so lower_bound on the vertices is the
primal of the same LP); eps = 0 gives mean_i phibar_i(0+); one uncapped linear segment per sample also
gets Hoelder's closed form eps (mean_i L_i^q)^(1/q), which ignores the diameter (the dual may be smaller).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wdrobust.primal.curves import AttainedPoints, Majorant
from wdrobust.primal.lower import lower_bound, mean_clean
from wdrobust.threat import ThreatModel

_BRACKET_STEPS = 24
_MAX_ITER = 80


@dataclass(frozen=True)
class UpperBound:
    """Bound on R_p(eps) - R(0): value; clean R(0) if given, risk = clean + value.

    lam: the multiplier that attains ``value`` (None for the closed forms); method: "pointwise" (p = inf),
    "vertices" (p = 1), "dual" (1 < p < inf), "hoelder" or "jump" (eps = 0). sound: the majorant's flag.
    """

    threat: ThreatModel
    value: float
    clean: float | None
    lam: float | None
    method: str
    sound: bool

    @property
    def risk(self) -> float | None:
        """The risk upper bound R(0) + value (None without the clean risk)."""
        return None if self.clean is None else self.clean + self.value


@dataclass(frozen=True)
class _Shape:
    """Majorant reduced to what the dual needs: truncated segments and the cap point, per sample."""

    lo: np.ndarray  # (N, M) segment starts
    hi: np.ndarray  # (N, M) segment ends, truncated at t_cap
    a: np.ndarray  # (N, M) finite slopes
    c: np.ndarray  # (N, M) phibar at lo
    valid: np.ndarray  # (N, M) finite slope and lo < hi
    t_cap: np.ndarray  # (N,) where phibar reaches the cap (T if never)
    v_cap: np.ndarray  # (N,) phibar there


def _shape(m: Majorant) -> _Shape:
    n = m.n
    hi = m.knots
    lo = np.concatenate([np.zeros((n, 1)), hi[:, :-1]], axis=1)
    rise = m.slopes * (hi - lo)  # inf for inf slopes (hi > lo)
    c = np.concatenate([np.zeros((n, 1)), np.cumsum(rise, axis=1)[:, :-1]], axis=1)
    reach = c + rise >= m.cap[:, None]
    reached = reach.any(axis=1)
    k = reach.argmax(axis=1)
    rows = np.arange(n)
    a_k, c_k, lo_k, hi_k = m.slopes[rows, k], c[rows, k], lo[rows, k], hi[rows, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(c_k >= m.cap, 0.0, (m.cap - c_k) / a_k)
    t_cap = np.where(reached, np.minimum(lo_k + step, hi_k), hi[:, -1])
    v_cap = np.where(reached, m.cap, c[:, -1] + rise[:, -1])
    hi_t = np.minimum(hi, t_cap[:, None])
    finite = np.isfinite(m.slopes)
    valid = finite & (lo < hi_t)
    return _Shape(lo, hi_t, np.where(finite, m.slopes, 0.0), np.where(valid, c, 0.0), valid, t_cap, v_cap)


class _Dual:
    """D(lambda) and its subgradient for one majorant, p in (1, inf); arrays (N, M) with invalid segments
    scoring -inf."""

    def __init__(self, shape: _Shape, p: float, eps: float) -> None:
        self.p, self.eps_p = p, eps**p
        self.shape = shape
        self.lo_p, self.hi_p = shape.lo**p, shape.hi**p
        self.base = (shape.a / p) ** (1 / (p - 1))  # t* = base * lambda^(-1/(p-1))
        self.t_cap_p = shape.t_cap**p
        self.rows = np.arange(shape.t_cap.shape[0])

    def __call__(self, lam: float) -> tuple[float, float]:
        """(D(lambda), eps^p - mean_i t_i^p) at lambda > 0, t_i a maximiser of the inner sup."""
        sh, p = self.shape, self.p
        star = self.base * lam ** (-1 / (p - 1))
        t = np.clip(star, sh.lo, sh.hi)
        tp = np.where(star <= sh.lo, self.lo_p, np.where(star >= sh.hi, self.hi_p, t**p))
        val = np.where(sh.valid, sh.c + sh.a * (t - sh.lo) - lam * tp, -np.inf)
        k = val.argmax(axis=1)
        seg_val, seg_tp = val[self.rows, k], tp[self.rows, k]
        cap_val = sh.v_cap - lam * self.t_cap_p
        best = np.maximum(np.maximum(seg_val, cap_val), 0.0)
        best_tp = np.where(best == seg_val, seg_tp, np.where(best == cap_val, self.t_cap_p, 0.0))
        return lam * self.eps_p + float(best.mean()), self.eps_p - float(best_tp.mean())


def _minimise(dual: _Dual, lam_lo: float, lam_hi: float) -> tuple[float, float]:
    """min over lambda in [lam_lo, lam_hi] of the convex D: geometric scan for the sign change of the
    subgradient, then regula falsi (Illinois) on log lambda. Returns (best D, its lambda)."""
    best = (math.inf, lam_lo)
    grid = np.geomspace(lam_lo, lam_hi, _BRACKET_STEPS)
    evals = [dual(float(lam)) for lam in grid]
    for lam, (val, _) in zip(grid, evals, strict=True):
        best = min(best, (val, float(lam)))
    slopes = np.array([d for _, d in evals])
    up = np.flatnonzero(slopes >= 0)
    if up.size == 0 or up[0] == 0:
        return best
    i = int(up[0])
    u0, u1 = math.log(grid[i - 1]), math.log(grid[i])
    d0, d1 = slopes[i - 1], slopes[i]
    side = 0
    for _ in range(_MAX_ITER):
        if u1 - u0 <= 1e-13 * max(1.0, abs(u0)):
            break
        u = u0 - d0 * (u1 - u0) / (d1 - d0) if d1 != d0 else 0.5 * (u0 + u1)
        u = min(max(u, u0 + 1e-3 * (u1 - u0)), u1 - 1e-3 * (u1 - u0))
        val, d = dual(math.exp(u))
        best = min(best, (val, math.exp(u)))
        if d == 0:
            break
        if d < 0:
            u0, d0 = u, d
            if side == -1:
                d1 /= 2
            side = -1
        else:
            u1, d1 = u, d
            if side == 1:
                d0 /= 2
            side = 1
    return best


def _vertices(m: Majorant, shape: _Shape) -> AttainedPoints:
    """The breakpoints (knots and the cap point) of phibar with their values, for p = 1."""
    t = np.concatenate([m.knots, shape.t_cap[:, None]], axis=1)
    g = np.concatenate([_at_knots(m), shape.v_cap[:, None]], axis=1)
    return AttainedPoints(t, g)


def _at_knots(m: Majorant) -> np.ndarray:
    """phibar_i at each of its knots, shape (N, M)."""
    return np.stack([m(m.knots[:, k]) for k in range(m.knots.shape[1])], axis=1)


def upper_bound(
    majorant: Majorant, threat: ThreatModel, clean: float | np.ndarray | None = None
) -> UpperBound:
    """Sound bound on R_p(eps) from per-sample growth majorants (see the module docstring).

    majorant: Majorant (N samples); clean: R(0) as a mean or per-sample losses (N,). The result is sound
    when the majorant is (``UpperBound.sound`` copies its flag).
    """
    if not isinstance(majorant, Majorant):
        raise ValueError(f"majorant must be a Majorant, got {type(majorant).__name__}")
    if not isinstance(threat, ThreatModel):
        raise ValueError(f"threat must be a ThreatModel, got {type(threat).__name__}")
    if majorant.n == 0:
        raise ValueError("no samples: the majorant is empty")
    r0 = mean_clean(clean, majorant.n)

    def done(value: float, lam: float | None, method: str) -> UpperBound:
        return UpperBound(threat, float(value), r0, lam, method, majorant.sound)

    p, eps = threat.p, threat.eps
    if math.isinf(p):
        return done(float(majorant(eps).mean()), None, "pointwise")
    shape = _shape(majorant)
    if not np.isfinite(shape.v_cap).all():
        return done(math.inf, None, "dual")  # an uncapped jump: unbounded growth
    if eps == 0:
        jump = np.where(shape.t_cap == 0, shape.v_cap, 0.0)
        return done(float(jump.mean()), None, "jump")
    if p == 1:
        exact = lower_bound(_vertices(majorant, shape), threat)
        return done(exact.value, None, "vertices")
    d_zero = float(majorant(majorant.knots[:, -1]).mean())  # lambda = 0
    a = shape.a[shape.valid & (shape.a > 0)]
    far = float(majorant.knots[:, -1].max())
    # beyond hi every inner maximiser has t <= eps (subgradient >= 0); below lo every one sits at its end
    hi = max(float(a.max(initial=0.0)) / (p * eps ** (p - 1)), float(shape.v_cap.max()) / eps**p)
    if hi <= 0:
        return done(d_zero, 0.0, "dual")
    lo = min(float(a.min(initial=np.inf)) / (p * far ** (p - 1)), float(shape.v_cap.max()) / far**p)
    value, lam = _minimise(_Dual(shape, p, eps), max(lo, hi * 1e-12) * 1e-3, hi * 4)
    if d_zero <= value:
        value, lam = d_zero, 0.0
    single = majorant.knots.shape[1] == 1 and np.isinf(majorant.cap).all()
    if single:
        q = threat.q
        hoelder = eps * float(np.mean(majorant.slopes[:, 0] ** q)) ** (1 / q)
        if hoelder < value:
            return done(hoelder, None, "hoelder")
    return done(value, lam, "dual")
