"""The transport budget of a lower bound's distribution and its audit against the threat's radius.

A lower bound's worst case keeps weight 1 - alpha_i of sample i at its point ``low_i`` and alpha_i at its
point ``high_i`` (distances t from x_i). Under the identity coupling (each sample's mass stays its own)

    W_p(Q, P_N) <= ((1/N) sum_i (1 - alpha_i) t_i,low^p + alpha_i t_i,high^p)^(1/p)   (p < inf),
    W_inf(Q, P_N) <= max_i over the points used (weight > 0) of t_i,                  (p = inf),

which the audit compares with eps, recomputed from the attained distances themselves (not from the
solver's bookkeeping of costs). ``Distribution.audit`` checks the same inequality on explicit points.
"""

from __future__ import annotations

import math

import numpy as np

from wdrobust.threat import ThreatModel

#: Relative slack of the budget audits (floating-point rounding of the costs).
AUDIT_RTOL = 1e-9


def budget_limit(threat: ThreatModel) -> float:
    """The budget of a W_p ball in cost units: eps^p (p < inf), eps (p = inf)."""
    return threat.eps if math.isinf(threat.p) else threat.eps**threat.p


def transport_budget(t: np.ndarray, low: np.ndarray, high: np.ndarray, alpha: np.ndarray, p: float) -> float:
    """The identity-coupling bound on W_p(Q, P_N) of the module docstring; t (N, M) distances of each
    sample's points, low, high (N,) int columns, alpha (N,) weights on high."""
    rows = np.arange(t.shape[0])
    t_low, t_high = t[rows, low], t[rows, high]
    alpha = np.asarray(alpha, dtype=np.float64)
    if math.isinf(p):
        used = np.where(alpha > 0, np.maximum(t_low, t_high), t_low)
        return float(used.max(initial=0.0))
    cost = (1 - alpha) * t_low**p + alpha * t_high**p
    return float(cost.mean() ** (1 / p))


def within_budget(budget: float, threat: ThreatModel) -> bool:
    """The audit of a W_p bound: budget <= eps (1 + AUDIT_RTOL) + 1e-12."""
    return bool(budget <= threat.eps * (1 + AUDIT_RTOL) + 1e-12)


def budget_fraction(spent: float, threat: ThreatModel) -> float:
    """The share of the budget used: spent / eps^p (spent / eps for p = inf), spent in cost units
    (mean t^p, or max t for p = inf); 0 when eps = 0."""
    limit = budget_limit(threat)
    return spent / limit if limit > 0 else 0.0
