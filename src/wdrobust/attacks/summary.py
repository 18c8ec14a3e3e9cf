"""Figures of an attack result under a threat, through the primal solver (one solver, two bounds).

- distributional robust accuracy 1 - R_p(eps) for zero_one: the knapsack over the closest flips d_i
  (``primal.flip_knapsack``), equal to the lower bound over all zero_one candidates;
- expected CE under the attack distribution: R(0) + the lower bound over the CE candidates;
- budget spent: the transport cost of the zero_one distribution, as a fraction of eps^p (of eps, p = inf).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from wdrobust.attacks.base import AttackResult
from wdrobust.primal import Distribution, flip_knapsack, lower_bound
from wdrobust.threat import ThreatModel


@dataclass(frozen=True)
class Summary:
    """Accuracies in [0, 1]; expected_ce is E_Q CE of the attack's worst distribution (None if CE was
    not recorded); budget_spent is cost / eps^p in [0, 1]."""

    attack: str
    threat: ThreatModel
    clean_accuracy: float
    robust_accuracy: float
    distributional_accuracy: float
    expected_ce: float | None
    budget_spent: float
    forward_passes: int
    backward_passes: int
    seconds: float


def budget_fraction(spent: float, threat: ThreatModel) -> float:
    """spent / eps^p (spent / eps for p = inf); 0 when eps = 0."""
    limit = threat.eps if math.isinf(threat.p) else threat.eps**threat.p
    return spent / limit if limit > 0 else 0.0


def summarize(result: AttackResult, threat: ThreatModel | None = None) -> Summary:
    """The summary figures of ``result`` under ``threat`` (default: the attack's own threat)."""
    threat = threat or result.threat
    flips = flip_knapsack(result.flip_distance, result.clean_correct, threat)
    zero_one = lower_bound(result.attained("zero_one"), threat, result.clean_loss["zero_one"])
    ce = lower_bound(result.attained("ce"), threat, result.clean_loss["ce"]) if "ce" in result.gains else None
    return Summary(
        attack=result.attack,
        threat=threat,
        clean_accuracy=float(result.clean_correct.mean()),
        robust_accuracy=result.robust_accuracy(threat.eps),
        distributional_accuracy=flips.robust_accuracy,
        expected_ce=None if ce is None else ce.risk,
        budget_spent=budget_fraction(zero_one.spent, threat),
        forward_passes=result.forward_passes,
        backward_passes=result.backward_passes,
        seconds=result.seconds,
    )


def worst_distribution(
    result: AttackResult,
    loss: str,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel | None = None,
    device: str | torch.device | None = None,
) -> Distribution:
    """The explicit (at most 2N-point) worst-case distribution of ``loss`` over the attack's candidates;
    needs a result run with keep_points=True on the same x (N, *S), y (N,). It passes its W_p audit."""
    if result.points is None:
        raise ValueError("the attack kept no points: run it with keep_points=True")
    bound = lower_bound(
        result.attained(loss), threat or result.threat, result.clean_loss[loss], x=x, y=y,
        candidates=result.points, device=device,
    )  # fmt: skip
    bound.distribution.audit()
    return bound.distribution
