"""Projected steepest ascent and best-point tracking, the loop most attacks are built from.

    x_{k+1} = P_{B(x0, r) cap [0,1]^d}(x_k + eta u(grad f(x_k)))

with u the unit step of ``steps.direction``; ``ascend`` runs it through ``Batch.gradient`` (so every
iterate is counted and recorded) and tracks the best point, the best value or nothing. ``keep_best`` and
``improve_`` keep the row-wise best iterate (m, *S) by value (m,).
"""

from __future__ import annotations

import math

import torch

from wdrobust.attacks.batch import Batch
from wdrobust.attacks.objectives import Objective
from wdrobust.attacks.steps import direction

TRACK = ("point", "value", "none")


def ascend(
    batch: Batch,
    x: torch.Tensor,
    rows: torch.Tensor,
    objective: Objective,
    radius: float | torch.Tensor,
    steps: int,
    step: float,
    sparsity: float | None = None,
    track: str = "point",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Projected steepest ascent x <- P_{B(x0, radius) cap box}(x + step u(grad objective)), ``steps``
    gradient steps plus one forward at the last iterate (every iterate is a recorded candidate).

    track: "point" returns the best iterate (m, *S) and the best objective value (m,); "value" the last
    iterate and the best value; "none" the last iterate and None (no per-step bookkeeping at all)."""
    if track not in TRACK:
        raise ValueError(f"track must be one of {', '.join(TRACK)}, got {track!r}")
    best_x, best_v = x, torch.full((x.shape[0],), -math.inf, device=x.device)
    for _ in range(steps):
        _, v, g = batch.gradient(x, objective, rows, values=track != "none")
        if track == "point":
            best_x, best_v = keep_best(best_x, best_v, x, v)
        elif track == "value":
            best_v = torch.maximum(best_v, v)
        u = direction(g, x, batch.threat.norm, sparsity, inplace=True)
        x = batch.project(torch.add(x, u, alpha=step, out=u), rows, radius, inplace=True)
    z = batch.evaluate(x, rows)
    if track == "none":
        return x, None
    v = objective(z, rows)
    if track == "point":
        return keep_best(best_x, best_v, x, v)
    return x, torch.maximum(best_v, v)


def keep_best(
    best_x: torch.Tensor, best_v: torch.Tensor, x: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise (x, v) where v > best_v, else (best_x, best_v); (x, v) themselves when every row improved
    (no copy: neither input is modified, so sharing them is safe)."""
    better = v > best_v
    if bool(better.all()):
        return x, v
    flat = torch.where(better[:, None], x.reshape(x.shape[0], -1), best_x.reshape(x.shape[0], -1))
    return flat.reshape(x.shape), torch.where(better, v, best_v)


def improve_(best: torch.Tensor, x: torch.Tensor, better: torch.Tensor) -> torch.Tensor:
    """best[i] <- x[i] in place for the rows i where better (m,) holds; best (m, *S) must own its memory.

    Copies only the improved rows (one pass over the inputs when all improved, none when none did)."""
    idx = better.nonzero().squeeze(1)
    if idx.numel() == better.numel():
        return best.copy_(x)
    if idx.numel():
        best.index_copy_(0, idx, x.index_select(0, idx))
    return best
