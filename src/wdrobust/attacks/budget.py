"""The transport budget of an attack: a threat model (norm, eps, p) over a population of N samples.

Under W_p(Q, P_N) <= eps with p < inf the N samples share the budget N eps^p (mean cost eps^p), so a
single sample may move up to N^(1/p) eps (the whole budget on it), and never farther than diam X. A batch
attacked as one part of a larger evaluated set has the budget of the whole set: its population is the
size of that set, not of the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wdrobust.threat import ThreatModel


@dataclass(frozen=True)
class Budget:
    """The budget of ``threat`` shared by ``population`` samples (N >= 1)."""

    threat: ThreatModel
    population: int

    def __post_init__(self) -> None:
        if int(self.population) != self.population or self.population < 1:
            raise ValueError(f"population must be a whole number >= 1, got {self.population!r}")

    def radius_cap(self, d: int) -> float:
        """The farthest one sample can move for input dimension d: min(diam X, N^(1/p) eps); eps for
        p = inf (every sample moves at most eps)."""
        threat = self.threat
        if math.isinf(threat.p):
            return threat.eps
        return min(threat.diameter(d), self.population ** (1.0 / threat.p) * threat.eps)

    def schedule(self, d: int, count: int) -> list[float]:
        """Radii for distributional attacks: [eps] for p = inf; else ``count`` radii geometric from eps to
        ``radius_cap(d)`` (just [eps] when eps = 0, count < 2 or the cap is not above eps)."""
        eps = self.threat.eps
        if eps == 0 or count < 2:
            return [eps]
        r_max = self.radius_cap(d)
        if r_max <= eps:
            return [eps]
        return [float(r) for r in np.geomspace(eps, r_max, count)]
