"""Upper bound from sound growth majorants phibar_i >= phi_i, by Lagrangian (weak) duality.

For every lambda >= 0 and p < inf,

    R_p(eps) - R(0) <= D(lambda) = lambda eps^p + (1/N) sum_i sup_{t in [0, T_i]} (phibar_i(t) - lambda t^p),

T_i the last knot (the diameter of X). phibar_i is piecewise linear, so the inner sup is exact: on each
segment c + a (t - lo) - lambda t^p is concave with stationary point t* = (a / (p lambda))^(1/(p-1)),
clipped to the segment; the cap truncates the domain where phibar first reaches it (slopes are >= 0), and
the value there is the cap. D is convex in lambda with subgradient eps^p - mean_i t_i(lambda)^p; it is
minimised by regula falsi (Illinois) on that subgradient over log lambda. Every evaluated lambda is a
sound bound and the smallest is returned.

A jump (slope +inf on (r_k-1, r_k]) is read upper semicontinuously: the cap counts from t = r_k-1 on, as
a supremum for p < inf and at t = eps = r_k-1 for p = inf (so a certified radius r_i may be the knot even
when it only excludes flips strictly inside r_i).

Special cases: p = inf gives mean_i phibar_i(eps) exactly; p = 1 gives the exact dual optimum (the
concave hull of the piecewise-linear phibar is that of its vertices, so lower_bound on the vertices is the
primal of the same LP); eps = 0 gives mean_i phibar_i(0+); one uncapped linear segment per sample also
gets Hoelder's closed form eps (mean_i L_i^q)^(1/q), which ignores the diameter (the dual may be smaller).

zero_one's step majorants (``CertifiedRadii``) are bounded by their exact knapsack (``primal.flips``), the
primal optimum over the steps 1{t >= r_i}, not by the dual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wdrobust.primal.curves import AttainedPoints, Majorant, segment_starts
from wdrobust.primal.flips import CertifiedRadii
from wdrobust.primal.hull import increasing_hulls
from wdrobust.primal.lower import lower_bound, mean_clean
from wdrobust.threat import ThreatModel

_MAX_ITER = 100
_RTOL = 1e-11
#: Rows per chunk of the dual's evaluation.
_ROWS = 1024


@dataclass(frozen=True)
class UpperBound:
    """Bound on R_p(eps) - R(0): value; clean R(0) if given, risk = clean + value.

    lam: the multiplier that attains ``value`` (None for the closed forms); method: "pointwise" (p = inf),
    "vertices" (p = 1), "dual" (1 < p < inf), "hoelder" or "jump" (eps = 0), "knapsack" (certified
    radii). sound: the majorant's flag.
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
    usc: np.ndarray  # (N,) the cap is reached by an infinite slope (read upper semicontinuously at t_cap)


def _shape(m: Majorant) -> _Shape:
    n = m.n
    hi = m.knots
    lo = segment_starts(hi)
    rise = m.slopes * (hi - lo)  # inf for inf slopes (hi > lo)
    c = m.start_values()
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
    usc = reached & ~np.isfinite(a_k) & (c_k < m.cap)
    return _Shape(
        lo, hi_t, np.where(finite, m.slopes, 0.0), np.where(valid, c, 0.0), valid, t_cap, v_cap, usc
    )


class _Dual:
    """D(lambda) and its subgradient for one majorant, p in (1, inf).

    The inner sup per sample is the larger of (a) the best breakpoint, max_k phibar(v_k) - lambda v_k^p
    over v = 0, the truncated knots and t_cap (segment ends), read on the vertices of their concave hull
    in (v^p, phibar) (``_hull_vertices``), and (b) the best interior stationary point:
    with mu = lambda^(-1/(p-1)) and base = (a/p)^(1/(p-1)), t* = base mu lies inside a segment iff
    lo/base < mu < hi/base, where its value is c - a lo + (p - 1) base^p mu and t*^p = base^p mu^p.
    """

    def __init__(self, m: Majorant, shape: _Shape, p: float) -> None:
        self.p = p
        vt, vv = _vertex_arrays(m, shape, shape.hi)
        self.vt_p, self.vv = _hull_vertices(vt**p, vv)
        use = shape.valid & (shape.a > 0)
        base = np.where(use, shape.a / p, 1.0) ** (1 / (p - 1))
        self.mu_lo = np.where(use, shape.lo / base, np.inf)
        self.mu_hi = np.where(use, shape.hi / base, -np.inf)
        self.bp = base**p
        self.c0 = shape.c - shape.a * shape.lo
        self.k = (p - 1) * self.bp

    def __call__(self, lam: float, eps_p: float) -> tuple[float, float]:
        """(D(lambda), eps^p - mean_i t_i^p) at lambda > 0 and eps^p, t_i a maximiser of the inner sup
        (rows in chunks of _ROWS, so that the temporaries stay small and are reused)."""
        mu = lam ** (-1 / (self.p - 1))
        value = power = 0.0
        for a in range(0, self.vv.shape[0], _ROWS):
            rows = slice(a, a + _ROWS)
            lane = np.arange(self.vv[rows].shape[0])
            at_vertex = self.vv[rows] - lam * self.vt_p[rows]
            k = at_vertex.argmax(axis=1)
            best, best_tp = at_vertex[lane, k], self.vt_p[rows][lane, k]
            inside = (self.mu_lo[rows] < mu) & (mu < self.mu_hi[rows])
            interior = np.where(inside, self.c0[rows] + mu * self.k[rows], -np.inf)
            j = interior.argmax(axis=1)
            inner = interior[lane, j]
            take = inner > best
            value += float(np.where(take, inner, best).sum())
            power += float(np.where(take, self.bp[rows][lane, j] * mu**self.p, best_tp).sum())
        n = self.vv.shape[0]
        return lam * eps_p + value / n, eps_p - power / n


def _hull_vertices(s: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The vertices (s, v) (N, W) of the increasing upper concave hull of each row's points (s, v) (N, K),
    column 0 the origin, padded with the origin: for lambda >= 0, max_k v_k - lambda s_k is attained at a
    hull vertex, so the dual reads W <= K columns per lambda instead of K."""
    parts = increasing_hulls(s, v)
    width = max(h.s.shape[0] for h in parts)
    out_s, out_v = np.zeros((s.shape[0], width)), np.zeros((s.shape[0], width))
    row = 0
    for h in parts:
        used = np.arange(h.s.shape[0])[:, None] < h.count[None, :]  # (W_chunk, R)
        rows = slice(row, row + h.count.shape[0])
        out_s[rows, : h.s.shape[0]] = np.where(used, h.s, 0.0).T
        out_v[rows, : h.s.shape[0]] = np.where(used, h.g, 0.0).T
        row += h.count.shape[0]
    return out_s, out_v


def _tangent_floor(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """Lower bound on min D between lambda_a and lambda_b from the tangents (lambda, D, D') at both ends
    (D convex, D'(a) < 0 < D'(b)): the value where the two tangent lines cross."""
    (la, va, da), (lb, vb, db) = a, b
    cross = (vb - va + da * la - db * lb) / (da - db)
    return va + da * (cross - la)


def _minimise(dual: _Dual, eps_p: float, lam_lo: float, lam_hi: float) -> tuple[float, float]:
    """min over lambda in [lam_lo, lam_hi] of the convex D by regula falsi (Illinois) on its subgradient
    over log lambda. Stops when the tangents at the bracket ends prove the best value within
    _RTOL of the minimum. Returns (the smallest D evaluated, its lambda)."""
    lo = (lam_lo, *dual(lam_lo, eps_p))
    hi = (lam_hi, *dual(lam_hi, eps_p))
    best = min((lo[1], lam_lo), (hi[1], lam_hi))
    if lo[2] >= 0 or hi[2] <= 0:  # D is monotone on the bracket: an end is the minimum
        return best
    w_lo, w_hi = lo[2], hi[2]  # Illinois weights (the subgradients, halved when one end sticks)
    side = 0
    for _ in range(_MAX_ITER):
        if best[0] - _tangent_floor(lo, hi) <= _RTOL * abs(best[0]) + 1e-300:
            break
        u0, u1 = math.log(lo[0]), math.log(hi[0])
        if u1 - u0 <= 1e-15 * max(1.0, abs(u0)):
            break
        u = u0 - w_lo * (u1 - u0) / (w_hi - w_lo)
        lam = math.exp(min(max(u, u0 + 1e-4 * (u1 - u0)), u1 - 1e-4 * (u1 - u0)))
        here = (lam, *dual(lam, eps_p))
        best = min(best, (here[1], lam))
        if here[2] == 0:
            break
        if here[2] < 0:
            lo, w_lo = here, here[2]
            w_hi = w_hi / 2 if side == -1 else hi[2]
            side = -1
        else:
            hi, w_hi = here, here[2]
            w_lo = w_lo / 2 if side == 1 else lo[2]
            side = 1
    return best


def _vertex_arrays(m: Majorant, shape: _Shape, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t, value) (N, 2M + 2) of the breakpoints of phibar: 0, the segment ends ``ends`` with phibar there,
    the segment starts lo with the right limits phibar(lo+) (suprema, jumps included; (0, 0) where the
    segment is not used) and the cap point."""
    n = m.n
    starts_t = np.where(shape.valid, shape.lo, 0.0)
    starts_v = np.where(shape.valid, shape.c, 0.0)
    t = np.concatenate([np.zeros((n, 1)), ends, starts_t, shape.t_cap[:, None]], axis=1)
    v = np.concatenate([np.zeros((n, 1)), m.at(ends), starts_v, shape.v_cap[:, None]], axis=1)
    return t, v


def _vertices(m: Majorant, shape: _Shape) -> AttainedPoints:
    """The breakpoints of phibar with their values (suprema at jumps), for p = 1."""
    t, v = _vertex_arrays(m, shape, m.knots)
    return AttainedPoints(t[:, 1:], v[:, 1:])


#: Largest |log| of eps^p and diam^p the dual evaluates (float64 reaches about 1e+-308).
_LOG_RANGE = 250 * math.log(10)


def _representable_order(p: float, eps: float, far: float) -> float:
    """p, or the largest p' in [1, p] for which eps^p' and far^p' stay within 1e+-250.

    Sound: W_p' <= W_p for p' <= p, so the W_p' ball contains the W_p ball and R_p(eps) <= R_p'(eps); for
    such large p the two are nearly equal (both tend to R_inf)."""
    scale = max(abs(math.log(eps)), math.log(max(far, 1.0)), 1e-300)
    return max(1.0, min(p, _LOG_RANGE / scale))


class UpperBounder:
    """``upper_bound`` of one majorant at many threat models: ``UpperBounder(m)(threat, clean)`` equals
    ``upper_bound(m, threat, clean)``, but the work that does not depend on eps (the majorant's shape, the
    p = 1 vertices, and per p the hull of the breakpoints and the stationary-point tables of the dual) is
    done once per majorant (and p), not once per threat model. Certified radii need no such work."""

    def __init__(self, majorant: Majorant | CertifiedRadii) -> None:
        if isinstance(majorant, CertifiedRadii):
            if majorant.n == 0:
                raise ValueError("no samples: the certified radii are empty")
            self.majorant = majorant
            return
        if not isinstance(majorant, Majorant):
            raise ValueError(f"majorant must be a Majorant or CertifiedRadii, got {type(majorant).__name__}")
        if majorant.n == 0:
            raise ValueError("no samples: the majorant is empty")
        self.majorant = majorant
        self.shape = _shape(majorant)
        self._vertices: AttainedPoints | None = None
        self._duals: dict[float, _Dual] = {}

    def dual(self, p: float) -> _Dual:
        """The dual of order p in (1, inf) (its tables cached per p)."""
        if p not in self._duals:
            self._duals[p] = _Dual(self.majorant, self.shape, p)
        return self._duals[p]

    def __call__(self, threat: ThreatModel, clean: float | np.ndarray | None = None) -> UpperBound:
        """Sound bound on R_p(eps) (see ``upper_bound``)."""
        if not isinstance(threat, ThreatModel):
            raise ValueError(f"threat must be a ThreatModel, got {type(threat).__name__}")
        if isinstance(self.majorant, CertifiedRadii):
            return _radii_bound(self.majorant, threat, clean)
        majorant, shape = self.majorant, self.shape
        r0 = mean_clean(clean, majorant.n)

        def done(value: float, lam: float | None, method: str) -> UpperBound:
            if p != threat.p:
                method += f" (p lowered to {p:.4g}: eps^p underflows)"
            return UpperBound(threat, float(value), r0, lam, method, majorant.sound)

        p, eps = threat.p, threat.eps
        if 1 < p < math.inf and eps > 0:
            p = _representable_order(p, eps, float(majorant.knots[:, -1].max()))
        if math.isinf(p):
            # an infinite slope at exactly eps counts (upper semicontinuous, as for CertifiedRadii)
            at_eps = np.where(shape.usc & (shape.t_cap <= eps), shape.v_cap, majorant(eps))
            return done(float(at_eps.mean()), None, "pointwise")
        if not np.isfinite(shape.v_cap).all():
            return done(math.inf, None, "dual")  # an uncapped jump: unbounded growth
        if eps == 0:  # finite jumps count for t > 0 only; no mass moves
            jump = np.where(shape.usc & (shape.t_cap == 0), shape.v_cap, 0.0)
            return done(float(jump.mean()), None, "jump")
        if p == 1:
            if self._vertices is None:
                self._vertices = _vertices(majorant, shape)
            return done(lower_bound(self._vertices, threat).value, None, "vertices")
        d_zero = float(majorant(majorant.knots[:, -1]).mean())  # lambda = 0
        a = shape.a[shape.valid & (shape.a > 0)]
        far = float(majorant.knots[:, -1].max())
        # beyond hi every inner maximiser has t <= eps (subgradient >= 0); below lo every one sits at its end
        hi = max(float(a.max(initial=0.0)) / (p * eps ** (p - 1)), float(shape.v_cap.max()) / eps**p)
        if hi <= 0:
            return done(d_zero, 0.0, "dual")
        lo = min(float(a.min(initial=np.inf)) / (p * far ** (p - 1)), float(shape.v_cap.max()) / far**p)
        value, lam = _minimise(self.dual(p), eps**p, max(lo, hi * 1e-12) * 1e-3, hi * 4)
        if d_zero <= value:
            value, lam = d_zero, 0.0
        single = majorant.knots.shape[1] == 1 and np.isinf(majorant.cap).all() and not majorant.jumps.any()
        if single:
            q = threat.q
            hoelder = eps * float(np.mean(majorant.slopes[:, 0] ** q)) ** (1 / q)
            if hoelder < value:
                return done(hoelder, None, "hoelder")
        return done(value, lam, "dual")


def _radii_bound(radii: CertifiedRadii, threat: ThreatModel, clean: float | np.ndarray | None) -> UpperBound:
    """The knapsack over the steps 1{t >= r_i} (``flips.StepGrowth.points``): the exact optimum over the
    majorants, sound when the radii are; clean defaults to the radii's own clean zero_one losses."""
    r0 = mean_clean(radii.clean() if clean is None else clean, radii.n)
    value = lower_bound(radii.points(), threat).value
    return UpperBound(threat, value, r0, None, "knapsack", radii.sound)


def upper_bound(
    majorant: Majorant | CertifiedRadii, threat: ThreatModel, clean: float | np.ndarray | None = None
) -> UpperBound:
    """Sound bound on R_p(eps) from per-sample growth majorants (see the module docstring).

    majorant: Majorant (N samples), or CertifiedRadii (zero_one; clean then defaults to its own clean
    zero_one losses); clean: R(0) as a mean or per-sample losses (N,). The result is sound when the
    majorant is (``UpperBound.sound`` copies its flag). For many threat models of one majorant use
    ``UpperBounder``.
    """
    return UpperBounder(majorant)(threat, clean)
