"""Results -> bounds: the one path from attack and certificate records to risk bounds and their audits.

A record gives the growth of a loss (``AttackRecord.growth``: attained points, or for zero_one the flip
distances; ``CertificateRecord.growth``: a majorant, or for zero_one the certified radii); the primal
solver turns a growth, a threat model and the clean losses into a bound (``primal.lower_bound`` with its
audited budget, ``primal.upper_bound`` / ``UpperBounder``). Here the bounds become the typed entries of
results.json (``pipeline.document``; ``lower_entry``, ``upper_entry``, used by ``aggregate``) and the
figures of ``wdrobust attack`` (``summarize``); ``wdrobust certify`` prints the risk of the same upper
bound. In-memory results enter through ``AttackRecord.of`` / ``CertificateRecord.of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from wdrobust import primal
from wdrobust.pipeline.document import Cost, LowerEntry, UpperEntry
from wdrobust.pipeline.records import AttackRecord
from wdrobust.threat import ThreatModel


def lower_entry(bound: primal.LowerBound, cost: Cost, pooled_jobs: int | None = None) -> LowerEntry:
    """A lower bound as results.json holds it: value = the risk R(0) + best mixture gain, budget = its W_p
    audited from the attained distances, budget_ok = budget <= eps (``primal.audit.within_budget``)."""
    return LowerEntry(float(bound.risk), float(bound.budget), bool(bound.budget_ok), cost, pooled_jobs)


def upper_entry(bound: primal.UpperBound, cost: Cost, methods: tuple[str, ...] | None = None) -> UpperEntry:
    """An upper bound as results.json holds it: value = the risk R(0) + dual (or knapsack) value, sound =
    the majorant's flag."""
    return UpperEntry(float(bound.risk), bool(bound.sound), methods=methods, cost=cost)


@dataclass(frozen=True)
class Summary:
    """Accuracies in [0, 1]; expected_ce is E_Q CE of the attack's worst distribution (None if CE was
    not recorded); budget_spent is the zero_one distribution's cost / eps^p in [0, 1]."""

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


def summarize(result: Any, threat: ThreatModel | None = None) -> Summary:
    """The figures of an ``AttackResult`` under ``threat`` (default: the attack's own): distributional
    robust accuracy 1 - R_p(eps) of zero_one (the knapsack over the flip distances), expected CE
    R(0) + the CE lower bound, and the share of the budget the zero_one worst case spends."""
    threat = threat or result.threat
    rec, correct = AttackRecord.of(result), result.clean_correct
    zero_one = primal.lower_bound(rec.growth("zero_one", correct), threat, result.clean_loss["zero_one"])
    ce_points = rec.growth("ce", correct)
    ce = None if ce_points is None else primal.lower_bound(ce_points, threat, result.clean_loss["ce"])
    return Summary(
        attack=result.attack,
        threat=threat,
        clean_accuracy=float(correct.mean()),
        robust_accuracy=result.robust_accuracy(threat.eps),
        distributional_accuracy=1.0 - zero_one.risk,
        expected_ce=None if ce is None else ce.risk,
        budget_spent=zero_one.budget_fraction,
        forward_passes=result.forward_passes,
        backward_passes=result.backward_passes,
        seconds=result.seconds,
    )


def worst_distribution(
    result: Any,
    loss: str,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel | None = None,
    device: str | torch.device | None = None,
) -> primal.Distribution:
    """The explicit (at most 2N-point) worst-case distribution of ``loss`` over an attack's candidates;
    needs a result run with keep_points=True on the same x (N, *S), y (N,). It passes its W_p audit."""
    if result.points is None:
        raise ValueError("the attack kept no points: run it with keep_points=True")
    bound = primal.lower_bound(
        result.attained(loss), threat or result.threat, result.clean_loss[loss], x=x, y=y,
        candidates=result.points, device=device,
    )  # fmt: skip
    bound.distribution.audit()
    return bound.distribution
