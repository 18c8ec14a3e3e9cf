"""zero_one: the distributional accuracy knapsack over flip distances (WDA++'s aggregation).

For zero_one the growth of a correctly classified sample is the step phi_i(t) = 1{t >= d_i} (d_i its flip
distance); misclassified samples already count as errors and cannot gain. The worst case flips the cheapest
samples: costs d_i^p, budget N eps^p, the last one fractionally (p < inf); for p = inf every correct sample
with d_i <= eps flips. This is lower_bound on the points (d_i, 1).

- Attack flip distances d_i (a flip is reached at d_i): the flipped fraction is attained, so
  acc - flipped is an UPPER bound on the distributional robust accuracy.
- Certified radii r_i (no flip strictly inside r_i, so every flip costs at least r_i^p): cheaper costs can
  only flip more, so the same knapsack over r_i is a sound LOWER bound on it. For p = inf a sample with
  r_i <= eps counts as possibly flipped (the boundary is resolved against the certificate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wdrobust.primal.curves import AttainedPoints
from wdrobust.primal.lower import lower_bound
from wdrobust.threat import ThreatModel


@dataclass(frozen=True)
class FlipResult:
    """accuracy: clean accuracy; flipped: (N,) fraction of each sample's mass that flips (in [0, 1]);
    flipped_fraction: mean of ``flipped``; robust_accuracy = accuracy - flipped_fraction;
    risk = 1 - robust_accuracy (the zero_one risk, like ``LowerBound.risk`` / ``UpperBound.risk``)."""

    threat: ThreatModel
    accuracy: float
    flipped: np.ndarray
    flipped_fraction: float

    @property
    def robust_accuracy(self) -> float:
        """Distributional robust accuracy (an upper bound for attack distances, a lower one for radii)."""
        return self.accuracy - self.flipped_fraction

    @property
    def risk(self) -> float:
        """zero_one risk 1 - robust_accuracy (a lower bound for attack distances, an upper one for radii)."""
        return 1.0 - self.robust_accuracy


def flip_knapsack(distances: np.ndarray, correct: np.ndarray, threat: ThreatModel) -> FlipResult:
    """Knapsack over flip costs d_i^p of the correct samples; distances (N,) >= 0 (+inf: never flips),
    correct (N,) bool. Returns the per-sample flipped fractions and the distributional accuracy."""
    d = np.asarray(distances, dtype=np.float64)
    ok = np.asarray(correct)
    if d.ndim != 1:
        raise ValueError(f"distances must have shape (N,), got {d.shape}")
    if ok.shape != d.shape:
        raise ValueError(f"correct must have shape {d.shape}, got {ok.shape}")
    if ok.dtype != bool:
        raise ValueError(f"correct must be boolean, got dtype {ok.dtype}")
    if np.isnan(d).any():
        raise ValueError("flip distances contain NaN")
    if (d < 0).any():
        raise ValueError("flip distances must be >= 0")
    t = np.where(ok, d, np.inf)
    result = lower_bound(AttainedPoints(t, np.ones_like(t)), threat)
    alloc = result.allocation
    flipped = np.where(alloc.low == 1, 1.0, alloc.alpha * (alloc.high == 1))
    return FlipResult(threat, float(ok.mean()) if ok.size else 0.0, flipped, result.value)
