"""zero_one as a growth type: step growths from flip distances (attained) and certified radii (majorants).

For zero_one the growth of a correctly classified sample is the step phi_i(t) = 1{t >= d_i} (d_i its
flip distance); misclassified samples already count as errors and cannot gain. Its concave hull in
s = t^p is the single segment (0, 0) -> (d_i^p, 1), so the worst case flips the cheapest samples: costs
d_i^p, budget N eps^p, the last one fractionally (p < inf); for p = inf every correct sample with
d_i <= eps flips. Both roles solve this knapsack (``lower_bound`` over the points (d_i, 1)):

- ``FlipDistances`` (attained: a misclassified point was reached at d_i): the flipped fraction is
  attained, so R(0) + flipped is a LOWER bound on the zero_one risk (``lower_bound``);
- ``CertifiedRadii`` (no flip strictly inside r_i): 1{t >= r_i} majorises the growth, cheaper costs can
  only flip more, so the same knapsack over r_i is a sound UPPER bound on the risk (``upper_bound``). For
  p = inf a sample with r_i <= eps counts as possibly flipped (the boundary resolved against the
  certificate). The pointwise minimum of two such majorants is the step at the larger radius.

``closest_flips`` is the one definition of an attack's flip distances; ``attained_growth`` and
``certified_growth`` turn an attack's or a certificate's per-sample arrays into the growth of one loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from wdrobust.primal.curves import AttainedPoints, Majorant

#: The loss whose growth is a step.
ZERO_ONE = "zero_one"


def closest_flips(
    t: np.ndarray, zero_one_gain: np.ndarray | None, correct: np.ndarray, found: np.ndarray | None = None
) -> np.ndarray:
    """Per-sample distance of the closest misclassified point an attack found, shape (N,).

    d_i = min(found_i, min {t_ik : zero_one_gain_ik > 1/2}) for a correct sample (its clean zero_one loss
    is 0, so a candidate is misclassified exactly when its gain is 1), 0 for a misclassified one, inf when
    nothing was found. t, zero_one_gain: (N, M) candidate distances and zero_one gains (None: not
    recorded); correct: (N,) bool; found: (N,) the attack's own flip distances or None.
    """
    flips = np.full(correct.shape, np.inf) if found is None else np.asarray(found, dtype=np.float64)
    if zero_one_gain is not None:
        hit = np.where(zero_one_gain > 0.5, t, np.inf).min(axis=1, initial=np.inf)
        flips = np.minimum(flips, hit)
    return np.where(correct, flips, 0.0)


@dataclass
class StepGrowth:
    """The zero_one growth phi_i(t) = 1{t >= d_i} of the correct samples (misclassified ones cannot gain).

    distances: (N,) d_i >= 0 (+inf: never flips); correct: (N,) bool. NaN, negative distances and shape
    or dtype mismatches raise ValueError.
    """

    distances: np.ndarray
    correct: np.ndarray

    def __post_init__(self) -> None:
        d = np.asarray(self.distances, dtype=np.float64)
        ok = np.asarray(self.correct)
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
        self.distances, self.correct = d, ok

    @property
    def n(self) -> int:
        """Number of samples N."""
        return self.distances.shape[0]

    def points(self) -> AttainedPoints:
        """The step as points (d_i, 1) per correct sample (t = inf for misclassified ones), shape (N, 2)
        with the clean point: the knapsack of the module docstring is ``lower_bound`` over them."""
        t = np.where(self.correct, self.distances, np.inf)
        return AttainedPoints(t, np.ones_like(t))

    def clean(self) -> np.ndarray:
        """(N,) the clean zero_one losses 1{not correct_i}, whose mean is R(0)."""
        return (~self.correct).astype(np.float64)


@dataclass
class FlipDistances(StepGrowth):
    """Attained steps: at d_i the attack reached a misclassified point (``lower_bound``)."""

    @staticmethod
    def union(parts: Sequence[FlipDistances]) -> FlipDistances:
        """The closest flips of several attacks on the same samples: the per-sample minimum."""
        return FlipDistances(np.minimum.reduce([p.distances for p in parts]), parts[0].correct)


@dataclass
class CertifiedRadii(StepGrowth):
    """Step majorants: no flip strictly inside r_i = ``distances`` (``upper_bound``). sound: True only
    when the radii are guaranteed (estimates carry False); name: the certificate's."""

    sound: bool = True
    name: str = ""

    def minimum(self, other: CertifiedRadii) -> CertifiedRadii:
        """The pointwise minimum of two step majorants of the same N samples, 1{t >= max(r_i, r'_i)};
        sound only when both are."""
        if other.n != self.n:
            raise ValueError(f"minimum of certified radii of {self.n} and {other.n} samples")
        name = self.name if self.name == other.name else f"min({self.name}, {other.name})"
        return CertifiedRadii(
            np.maximum(self.distances, other.distances), self.correct, self.sound and other.sound, name
        )


def attained_growth(
    loss: str,
    t: np.ndarray,
    gains: Mapping[str, np.ndarray],
    correct: np.ndarray,
    found: np.ndarray | None = None,
) -> AttainedPoints | FlipDistances | None:
    """The growth an attack attained for ``loss``: zero_one -> FlipDistances (``closest_flips``), else
    AttainedPoints(t, gains[loss]) (None when the loss was not recorded). t: (N, M); gains: {loss: (N, M)};
    correct: (N,) bool; found: (N,) the attack's own flip distances or None."""
    if loss == ZERO_ONE:
        return FlipDistances(closest_flips(t, gains.get(ZERO_ONE), correct, found), correct)
    if loss not in gains:
        return None
    return AttainedPoints(t, gains[loss])


def certified_growth(
    loss: str,
    majorants: Mapping[str, Majorant],
    radii: np.ndarray | None,
    correct: np.ndarray,
    sound: bool,
    name: str,
) -> Majorant | CertifiedRadii | None:
    """The growth majorant a certificate gives for ``loss``: zero_one -> CertifiedRadii(radii) (None
    without radii), else majorants[loss] (None when absent). radii, correct: (N,)."""
    if loss == ZERO_ONE:
        return None if radii is None else CertifiedRadii(radii, correct, sound, name)
    return majorants.get(loss)
