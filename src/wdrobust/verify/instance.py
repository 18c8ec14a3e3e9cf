"""One verification instance: attack first, then the sound deciders cheapest first, then the attack again.

``verify_problem(problem, timeout)``:
1. the box search (``attacks.box_search``) for ATTACK_SHARE of the timeout; a candidate whose float64
   forward pass satisfies a disjunct (``Problem.holds``) gives ``sat``;
2. each decider of ``deciders`` in order whose expected time (``cost`` times the time of the last one that
   ran) fits in the time left (the others are skipped), on the disjuncts still open; when every disjunct
   is refuted: ``unsat``; a counterexample a decider found (branch and bound) that passes the float64
   re-check: ``sat``;
3. the rest of the time to the box search (new random starts); ``sat`` as in 1.
Otherwise ``unknown`` when every decider ran, ``timeout`` when some did not (time).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from wdrobust.attacks.box_search import box_search
from wdrobust.verify.deciders import DECIDERS, Decider
from wdrobust.verify.problem import Problem

#: Results of an instance, as VNN-COMP writes them.
RESULTS = ("sat", "unsat", "unknown", "timeout")
#: Share of the timeout for the first counterexample search.
ATTACK_SHARE = 0.2
#: Starts per disjunct and steps of one round of the box search.
RESTARTS, STEPS = 4, 50


@dataclass(frozen=True)
class Verdict:
    """result (one of RESULTS), seconds, what decided it ("attack", a decider's name, or ""), and for
    sat the counterexample x (n_in,) and its float64 outputs y (K,)."""

    result: str
    seconds: float
    by: str = ""
    x: np.ndarray | None = None
    y: np.ndarray | None = None

    def text(self) -> str:
        """The VNN-COMP result file: the result line, then for sat the assignment
        ``((X_0 v)`` ... ``(Y_0 v)`` ... ``)`` with the values in full float64 precision."""
        if self.x is None or self.y is None:
            return f"{self.result}\n"
        pairs = [f"(X_{i} {float(v)!r})" for i, v in enumerate(self.x)]
        pairs += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(self.y)]
        return "sat\n(" + "\n".join(pairs) + ")\n"


def search(problem: Problem, deadline: float, seed: int) -> np.ndarray | None:
    """A counterexample (n_in,) re-checked in float64 within the box, or None: rounds of the box search on
    the float32 model until the deadline (at least one step)."""
    model = problem.net.model
    lo = torch.tensor(problem.prop.lo, dtype=torch.float32).reshape(problem.net.shape)
    hi = torch.tensor(problem.prop.hi, dtype=torch.float32).reshape(problem.net.shape)
    disjuncts = [
        (torch.tensor(c, dtype=torch.float32), torch.tensor(d, dtype=torch.float32))
        for c, d in problem.prop.disjuncts
    ]
    gen = torch.Generator().manual_seed(seed)
    while True:
        found = box_search(
            model, lo, hi, disjuncts, restarts=RESTARTS, steps=STEPS, deadline=deadline, generator=gen
        )
        x = np.clip(found.x.double().flatten().numpy(), problem.prop.lo, problem.prop.hi)
        if found.violation <= 0 and problem.holds(x):
            return x
        if time.monotonic() >= deadline:
            return None


def verify_problem(
    problem: Problem, timeout: float, deciders: Sequence[Decider] = DECIDERS, seed: int = 0
) -> Verdict:
    """The verdict on one problem within about timeout seconds (a bound pass that has started runs to its
    end); see the module docstring."""
    start = time.monotonic()
    deadline = start + timeout

    def found(x: np.ndarray, by: str = "attack") -> Verdict:
        return Verdict("sat", time.monotonic() - start, by, x, problem.outputs64(x))

    x = search(problem, start + ATTACK_SHARE * timeout, seed)
    if x is not None:
        return found(x)
    open_ = torch.ones(len(problem.prop.disjuncts), dtype=torch.bool)
    ran, last = 0, 0.0
    for decider in deciders:
        began = time.monotonic()
        if began >= deadline:
            break
        if began + decider.cost * last >= deadline:
            continue  # skipped: a cheaper decider after it (branch and bound, cost 0) may still fit
        decision = decider(problem, open_, deadline)
        if decision.x is not None and problem.holds(decision.x):
            return found(decision.x, decider.name)
        open_ &= ~decision.refuted
        ran, last = ran + 1, time.monotonic() - began
        if not open_.any():
            return Verdict("unsat", time.monotonic() - start, decider.name)
    x = search(problem, deadline, seed + 1) if time.monotonic() < deadline else None
    if x is not None:
        return found(x)
    return Verdict("unknown" if ran == len(deciders) else "timeout", time.monotonic() - start)
