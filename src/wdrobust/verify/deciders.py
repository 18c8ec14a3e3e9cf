"""The sound deciders of ``verify``, cheapest first: each tries to refute the disjuncts still open.

A decider is a callable ``(problem, open, deadline) -> Decision`` with a ``name`` and a ``cost``: ``open``
(D,) bool marks the disjuncts not yet refuted, ``Decision.refuted`` (D,) bool those it proves never hold on
the box (soundly: ``certify.bounds.spec``), ``Decision.x`` a candidate counterexample it met on the way
(``verify`` re-checks it in float64), ``deadline`` a time.monotonic() value it should respect where it can
(bound passes are not interrupted). ``cost``: its expected time as a multiple of the time the decider
before it took; ``verify`` starts it only when that estimate fits in the time left (0: always).
``DECIDERS`` is the order ``verify`` runs them in: the bound passes cheapest first, then branch and bound
(``BabDecider``, complete on ReLU networks given time), which takes the rest of the time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import torch

from wdrobust.certify.bab.property import BabProperty
from wdrobust.certify.bab.search import BabOptions, solve
from wdrobust.certify.bounds.spec import refuted, spec_lower
from wdrobust.verify.problem import Problem


@dataclass(frozen=True)
class Decision:
    """refuted (D,) bool: the disjuncts proved never to hold on the box; x (n_in,): a candidate
    counterexample, or None."""

    refuted: torch.Tensor
    x: np.ndarray | None = None


class Decider(Protocol):
    """What ``verify`` runs after the attack; see the module docstring."""

    name: str
    cost: float

    def __call__(self, problem: Problem, open_: torch.Tensor, deadline: float) -> Decision: ...


@dataclass(frozen=True)
class BoundDecider:
    """Refutes with lower bounds of the open disjuncts' rows over the whole box: interval propagation
    (intermediate None), CROWN-IBP ("ibp"), CROWN ("auto": CROWN intermediates where affordable) and
    alpha-CROWN (alpha_steps > 0)."""

    name: str
    intermediate: str | None
    alpha_steps: int = 0
    cost: float = 1.0

    def __call__(self, problem: Problem, open_: torch.Tensor, deadline: float) -> Decision:
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
        return Decision(refuted(lower, problem.disjunct[rows], open_.numel())[0])


@dataclass(frozen=True)
class BabDecider:
    """Branch and bound (``certify.bab.search.solve``) on the open disjuncts over the box, until the
    deadline: disjunct k's rows C_k f + d_k <= 0 become the property's group k with rows -C_k, offsets
    -d_k (``BabProperty``). Every open disjunct is refuted when every leaf is verified (``unsat``); a
    counterexample of its search is returned as x; otherwise nothing is decided. options: its
    ``BabOptions`` (time_limit is replaced by the time left)."""

    name: str = "bab"
    cost: float = 0.0
    options: BabOptions = field(default_factory=BabOptions)

    def __call__(self, problem: Problem, open_: torch.Tensor, deadline: float) -> Decision:
        none = torch.zeros_like(open_)
        left = deadline - time.monotonic()
        if left <= 0 or not open_.any():
            return Decision(none)
        rows = open_[problem.disjunct]
        group = torch.unique(problem.disjunct[rows], return_inverse=True)[1]
        prop = BabProperty(problem.region, -problem.c[0, rows], -problem.d[0, rows], group)
        res = solve(problem.graph, prop, replace(self.options, time_limit=left))
        if res.status == "verified":
            return Decision(open_.clone())
        if res.status == "falsified" and res.counterexample is not None:
            return Decision(none, res.counterexample.reshape(-1).cpu().numpy())
        return Decision(none)


DECIDERS: tuple[Decider, ...] = (
    BoundDecider("ibp", None),
    BoundDecider("crown-ibp", "ibp"),
    BoundDecider("crown", "auto", cost=2.0),
    BoundDecider("alpha-crown", "auto", alpha_steps=20, cost=21.0),
    BabDecider(),
)
