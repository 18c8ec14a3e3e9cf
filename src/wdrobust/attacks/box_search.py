"""Counterexample search in a box: projected sign-gradient descent with restarts on a linear specification.

The property (a VNN-LIB one) is a disjunction over k of "every row of C_k f(x) + d_k is <= 0" on the box
[lo, hi]. For each disjunct the search minimises its violation

    v_k(x) = max_m (C_k f(x) + d_k)_m      (x is a counterexample for disjunct k iff v_k(x) <= 0)

from ``restarts`` starts per disjunct (the box's centre first, then uniform points), one batch row per
(start, disjunct), by the box's steepest descent x <- clip(x - eta (hi - lo) sign(grad v_k), lo, hi) with
eta halved at the checkpoints of APGD's schedule (``apgd.checkpoints``). Every iterate is a candidate:
the search keeps, over all rows, the point of least violation and stops at the first step where it is < 0
or at the deadline. The result is a candidate only: the caller re-checks it (``verify``), and calls again
with the same generator for new starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from wdrobust.attacks.apgd import checkpoints

#: First step size, as a fraction of each coordinate's width.
ETA = 0.25


@dataclass(frozen=True)
class Candidate:
    """The least-violation point x (*S) found, its violation min_k v_k(x) and that disjunct k."""

    x: torch.Tensor
    violation: float
    disjunct: int


def stacked_spec(
    disjuncts: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(C (D, M, K), d (D, M)): the disjuncts' rows padded to M = max rows with rows 0 . y - inf (which
    never attain the max)."""
    m = max(c.shape[0] for c, _ in disjuncts)
    k = disjuncts[0][0].shape[1]
    like = disjuncts[0][0]
    c_all = like.new_zeros((len(disjuncts), m, k))
    d_all = like.new_full((len(disjuncts), m), -torch.inf)
    for i, (c, d) in enumerate(disjuncts):
        c_all[i, : c.shape[0]], d_all[i, : d.shape[0]] = c, d
    return c_all, d_all


def violations(z: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """v (B,) = max_m (c_b z_b + d_b)_m; z (B, K) outputs, c (B, M, K), d (B, M)."""
    return (torch.einsum("bmk,bk->bm", c, z) + d).amax(dim=1)


def box_search(
    model: nn.Module,
    lo: torch.Tensor,
    hi: torch.Tensor,
    disjuncts: list[tuple[torch.Tensor, torch.Tensor]],
    *,
    restarts: int = 4,
    steps: int = 100,
    deadline: float | None = None,
    generator: torch.Generator | None = None,
) -> Candidate:
    """The least-violation point found in [lo, hi] (lo, hi (*S) in the model's input space and dtype);
    disjuncts: (C (m, K), d (m,)) in the model's dtype; ``restarts`` starts per disjunct (the first is the
    centre) and ``steps`` steps; deadline: a time.monotonic() value after which no further step starts.
    See the module docstring."""
    c1, d1 = stacked_spec(disjuncts)
    n_disj, shape = c1.shape[0], lo.shape
    c, d = c1.repeat(restarts, 1, 1), d1.repeat(restarts, 1)
    width = (hi - lo).expand(restarts * n_disj, *shape)
    best = Candidate(lo + (hi - lo) / 2, torch.inf, 0)
    halve = checkpoints(steps)
    u = torch.rand((restarts * n_disj, *shape), generator=generator, dtype=lo.dtype).to(lo.device)
    u[:n_disj] = 0.5
    x, eta = lo + u * width, ETA
    for step in range(steps + 1):
        x.requires_grad_(True)
        with torch.enable_grad():
            v = violations(model(x).flatten(1), c, d)
            (grad,) = torch.autograd.grad(v.sum(), x)
        v = v.detach()
        i = int(torch.argmin(v))
        if float(v[i]) < best.violation:
            best = Candidate(x[i].detach().clone(), float(v[i]), i % n_disj)
        if best.violation < 0 or (deadline is not None and time.monotonic() > deadline):
            break
        if step in halve:
            eta /= 2
        x = torch.minimum(torch.maximum(x.detach() - eta * width * grad.sign(), lo), hi)
    return best
