"""The sound deciders of ``verify``, cheapest first: each tries to refute the disjuncts still open.

A decider is a callable ``(problem, open, deadline) -> refuted`` with a ``name`` and a ``cost``: ``open``
(D,) bool marks the disjuncts not yet refuted, ``refuted`` (D,) bool those it proves never hold on the box
(soundly: ``certify.bounds.spec``), ``deadline`` a time.monotonic() value it should respect where it can
(bound passes are not interrupted). ``cost``: its expected time as a multiple of the time the decider
before it took; ``verify`` starts it only when that estimate fits in the time left (0: always).
``DECIDERS`` is the order ``verify`` runs them in; a complete method (branch and bound, which watches the
deadline itself) is appended as one more entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from wdrobust.certify.bounds.spec import refuted, spec_lower
from wdrobust.verify.problem import Problem


class Decider(Protocol):
    """What ``verify`` runs after the attack; see the module docstring."""

    name: str
    cost: float

    def __call__(self, problem: Problem, open_: torch.Tensor, deadline: float) -> torch.Tensor: ...


@dataclass(frozen=True)
class BoundDecider:
    """Refutes with lower bounds of the open disjuncts' rows over the whole box: interval propagation
    (intermediate None), CROWN-IBP ("ibp"), CROWN ("auto": CROWN intermediates where affordable) and
    alpha-CROWN (alpha_steps > 0)."""

    name: str
    intermediate: str | None
    alpha_steps: int = 0
    cost: float = 1.0

    def __call__(self, problem: Problem, open_: torch.Tensor, deadline: float) -> torch.Tensor:
        rows = open_[problem.disjunct]
        with torch.no_grad():
            lower = spec_lower(
                problem.graph,
                problem.region,
                problem.c[:, rows],
                problem.d[:, rows],
                intermediate=self.intermediate,
                alpha_steps=self.alpha_steps,
            )
        return refuted(lower, problem.disjunct[rows], open_.numel())[0]


DECIDERS: tuple[Decider, ...] = (
    BoundDecider("ibp", None),
    BoundDecider("crown-ibp", "ibp"),
    BoundDecider("crown", "auto", cost=2.0),
    BoundDecider("alpha-crown", "auto", alpha_steps=20, cost=21.0),
)
