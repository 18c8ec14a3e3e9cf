"""The primal WDRO solver: one engine for both bounds (DESIGN.md section 1).

- ``lower_bound``: exact optimum over mixtures of attained points (concave hulls + greedy fill), with the
  explicit worst-case ``Distribution``.
- ``upper_bound``: Lagrangian dual of per-sample growth majorants (sound when they are).
- ``flip_knapsack``: zero_one distributional accuracy from flip distances or certified radii.
"""

from wdrobust.primal.curves import AttainedPoints, Majorant
from wdrobust.primal.distribution import Distribution
from wdrobust.primal.flips import FlipResult, flip_knapsack
from wdrobust.primal.lower import Allocation, LowerBound, lower_bound
from wdrobust.primal.upper import UpperBound, UpperBounder, upper_bound

__all__ = [
    "Allocation",
    "AttainedPoints",
    "Distribution",
    "FlipResult",
    "LowerBound",
    "Majorant",
    "UpperBound",
    "UpperBounder",
    "flip_knapsack",
    "lower_bound",
    "upper_bound",
]
