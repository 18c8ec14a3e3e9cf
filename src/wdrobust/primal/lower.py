"""Lower bound: the exact optimum over mixtures of attained points (docs/notation.md#the-primal-form).

p < inf:  max (1/N) sum_i sum_k w_ik g_ik  s.t.  w_i in the simplex,  (1/N) sum_ik w_ik t_ik^p <= eps^p.
The optimum puts each sample on its increasing concave hull in (s = t^p, g); filling the budget N eps^p
over all hull segments by decreasing slope (fractional knapsack) is optimal, with at most one sample
split between two hull vertices. p = inf: each sample takes its best point with t <= eps.

zero_one's attained growth (``FlipDistances``) is solved as the points (d_i, 1) of its steps. Every bound
carries its transport budget, audited from the attained distances (``primal.audit``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from wdrobust.primal.audit import budget_fraction, transport_budget, within_budget
from wdrobust.primal.curves import AttainedPoints
from wdrobust.primal.distribution import Distribution
from wdrobust.primal.flips import FlipDistances
from wdrobust.primal.hull import increasing_hulls
from wdrobust.primal.knapsack import greedy_fill
from wdrobust.threat import ThreatModel


@dataclass(frozen=True)
class Allocation:
    """Per-sample worst-case mixture over attained points, all shapes (N,).

    low, high: int64 columns of AttainedPoints (0 = the clean point, k >= 1 = the attack's candidate k-1);
    sample i keeps weight 1 - alpha_i on ``low`` and alpha_i on ``high`` (high = low where alpha_i = 0).
    cost: its transport cost (1 - alpha) t_low^p + alpha t_high^p (p < inf), or t_low (p = inf).
    gain: (1 - alpha) g_low + alpha g_high.
    """

    low: np.ndarray
    high: np.ndarray
    alpha: np.ndarray
    cost: np.ndarray
    gain: np.ndarray


def mean_clean(clean: float | np.ndarray | None, n: int) -> float | None:
    """R(0) from a mean (float) or per-sample clean losses of shape (n,); None passes through."""
    if clean is None:
        return None
    arr = np.asarray(clean, dtype=np.float64)
    if arr.ndim == 0:
        value = float(arr)
    elif arr.shape == (n,):
        value = float(arr.mean()) if n else 0.0
    else:
        raise ValueError(f"clean must be a number or have shape ({n},), got {arr.shape}")
    if not math.isfinite(value):
        raise ValueError("clean risk is not finite")
    return value


@dataclass(frozen=True)
class LowerBound:
    """Value of the best mixture of attained points: a true lower bound on R_p(eps) - R(0).

    value: mean gain (1/N) sum_i allocation.gain_i (for flip distances: the mean flipped fraction, gain_i
    the fraction of sample i that flips). clean: R(0) if given; risk = clean + value.
    spent: mean transport cost (1/N) sum_i cost_i (<= eps^p), or max_i cost_i for p = inf.
    budget: the identity-coupling bound on W_p(Q, P_N) recomputed from the attained distances
    (``budget.transport_budget``). distribution: the explicit worst case when the points were given.
    """

    threat: ThreatModel
    value: float
    clean: float | None
    spent: float
    budget: float
    allocation: Allocation
    distribution: Distribution | None = None

    @property
    def risk(self) -> float | None:
        """The risk lower bound R(0) + value (None without the clean risk)."""
        return None if self.clean is None else self.clean + self.value

    @property
    def budget_ok(self) -> bool:
        """The audit: budget <= eps within ``budget.AUDIT_RTOL`` (``budget.within_budget``)."""
        return within_budget(self.budget, self.threat)

    @property
    def budget_fraction(self) -> float:
        """spent / eps^p (spent / eps for p = inf): the share of the budget used."""
        return budget_fraction(self.spent, self.threat)

    def build_distribution(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        candidates: torch.Tensor,
        device: str | torch.device | None = None,
    ) -> Distribution:
        """The (at most 2N-point) distribution: sample i keeps (1 - alpha_i)/N at its low point and
        alpha_i/N at its high point. x: (N, *S) clean inputs, y: (N,), candidates: (N, M, *S) with M the
        number of attack columns of the AttainedPoints. Zero-weight points are left out."""
        return Distribution.from_allocation(
            self.threat, x, y, candidates, self.allocation.low, self.allocation.high,
            self.allocation.alpha, device=device,
        )  # fmt: skip


def _pointwise(points: AttainedPoints, eps: float) -> Allocation:
    """p = inf: the best point with t <= eps per sample."""
    k = np.where(points.t <= eps, points.g, -np.inf).argmax(axis=1)
    rows = np.arange(points.n)
    return Allocation(
        low=k, high=k.copy(), alpha=np.zeros(points.n), cost=points.t[rows, k], gain=points.g[rows, k]
    )


def _power(t: np.ndarray, p: float) -> np.ndarray:
    """t^p elementwise (+inf stays +inf), with the cheap cases p = 1, 2 done without pow."""
    if p == 1:
        return t
    if p == 2:
        return t * t
    return np.power(t, p)


def _hull_fill(points: AttainedPoints, p: float, budget: float) -> Allocation:
    """p < inf: hull per sample, then the fractional knapsack over all hull segments."""
    n = points.n
    hulls = increasing_hulls(_power(points.t, p), points.g)
    starts = np.cumsum([0] + [h.count.shape[0] for h in hulls])
    parts = [h.segments() for h in hulls]
    sigma = np.concatenate([sl for sl, _, _ in parts])
    fill = greedy_fill(sigma, np.concatenate([c for _, c, _ in parts]), budget)
    owner = np.concatenate([lane + a for (_, _, lane), a in zip(parts, starts, strict=False)])
    low = np.bincount(owner[fill.full], minlength=n)
    high = low.copy()
    alpha = np.zeros(n)
    if fill.partial >= 0:
        row = owner[fill.partial]
        high[row] += 1
        alpha[row] = fill.fraction
    lo = [h.vertex(low[a:b]) for h, a, b in zip(hulls, starts, starts[1:], strict=False)]
    hi = [h.vertex(high[a:b]) for h, a, b in zip(hulls, starts, starts[1:], strict=False)]
    (k_lo, s_lo, g_lo), (k_hi, s_hi, g_hi) = (
        [np.concatenate(c) for c in zip(*v, strict=True)] for v in (lo, hi)
    )
    return Allocation(
        low=k_lo,
        high=k_hi,
        alpha=alpha,
        cost=(1 - alpha) * s_lo + alpha * s_hi,
        gain=(1 - alpha) * g_lo + alpha * g_hi,
    )


def lower_bound(
    points: AttainedPoints | FlipDistances,
    threat: ThreatModel,
    clean: float | np.ndarray | None = None,
    *,
    x: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
    candidates: torch.Tensor | None = None,
    device: str | torch.device | None = None,
) -> LowerBound:
    """Exact optimum over mixtures of attained points (see the module docstring).

    points: AttainedPoints (N, M+1) with column 0 the clean point, or FlipDistances (zero_one: the points
    (d_i, 1); clean then defaults to its own clean zero_one losses). clean: R(0) as a mean or per-sample
    losses (N,). Given x (N, *S), y (N,) and candidates (N, M, *S) of AttainedPoints, the explicit
    distribution is built too (on ``device``). Distances are taken as given: for p = inf a point counts
    only if t <= eps.
    """
    if isinstance(points, FlipDistances):
        if any(a is not None for a in (x, y, candidates)):
            raise ValueError("a distribution is built from attained points and their candidates")
        clean = points.clean() if clean is None else clean
        points = points.points()
    if not isinstance(points, AttainedPoints):
        raise ValueError(f"points must be AttainedPoints or FlipDistances, got {type(points).__name__}")
    if not isinstance(threat, ThreatModel):
        raise ValueError(f"threat must be a ThreatModel, got {type(threat).__name__}")
    if points.n == 0:
        raise ValueError("no samples: attained points are empty")
    r0 = mean_clean(clean, points.n)
    if math.isinf(threat.p):
        alloc = _pointwise(points, threat.eps)
        spent = float(alloc.cost.max())
    else:
        alloc = _hull_fill(points, threat.p, points.n * threat.eps**threat.p)
        spent = float(alloc.cost.mean())
    budget = transport_budget(points.t, alloc.low, alloc.high, alloc.alpha, threat.p)
    result = LowerBound(threat, float(alloc.gain.mean()), r0, spent, budget, alloc)
    given = [a is not None for a in (x, y, candidates)]
    if any(given) and not all(given):
        raise ValueError("building the distribution needs x, y and candidates together")
    if all(given):
        dist = result.build_distribution(x, y, candidates, device=device)
        result = LowerBound(threat, result.value, r0, spent, budget, alloc, dist)
    return result
