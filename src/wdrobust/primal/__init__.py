"""The primal WDRO solver: one engine for both bounds (docs/notation.md#the-primal-form).

Growth types: attained (``AttainedPoints``; zero_one: ``FlipDistances``) and majorants (``Majorant``;
zero_one: ``CertifiedRadii``).

- ``lower_bound``: exact optimum over mixtures of attained points (concave hulls + greedy fill), with its
  audited transport budget and the explicit worst-case ``Distribution``.
- ``upper_bound``: Lagrangian dual of per-sample growth majorants, or the knapsack over certified radii
  (sound when they are).
"""

from wdrobust.primal.curves import AttainedPoints, Majorant
from wdrobust.primal.distribution import Distribution
from wdrobust.primal.flips import (
    CertifiedRadii,
    FlipDistances,
    StepGrowth,
    attained_growth,
    certified_growth,
    closest_flips,
)
from wdrobust.primal.lower import Allocation, LowerBound, lower_bound
from wdrobust.primal.upper import UpperBound, UpperBounder, upper_bound

__all__ = [
    "Allocation",
    "AttainedPoints",
    "CertifiedRadii",
    "Distribution",
    "FlipDistances",
    "LowerBound",
    "Majorant",
    "StepGrowth",
    "UpperBound",
    "UpperBounder",
    "attained_growth",
    "certified_growth",
    "closest_flips",
    "lower_bound",
    "upper_bound",
]
