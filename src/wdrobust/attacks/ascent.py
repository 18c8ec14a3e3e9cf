"""Projected steepest ascent and best-point tracking, the loop most attacks are built from.

    x_{k+1} = P_{B(x0, r) cap [0,1]^d}(x_k + eta u(grad f(x_k)))

with u the unit step of ``steps.direction``; ``ascend`` runs it through ``Batch.gradient`` (so every
iterate is counted and recorded) and tracks the best point or nothing; ``ascend_until_broken`` tracks the
best value of each row and retires a sample's rows once one of them is misclassified (WDA's target probe).
``keep_best`` and ``improve_`` keep the row-wise best iterate (m, *S) by value (m,).
"""

from __future__ import annotations

import math

import torch

from wdrobust.attacks.batch import Batch
from wdrobust.attacks.objectives import LinearObjective, Objective
from wdrobust.attacks.steps import direction

TRACK = ("point", "none")


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

    track: "point" returns the best iterate (m, *S) and the best objective value (m,); "none" the last
    iterate and None (no per-step bookkeeping at all)."""
    if track not in TRACK:
        raise ValueError(f"track must be one of {', '.join(TRACK)}, got {track!r}")
    best_x, best_v = x, torch.full((x.shape[0],), -math.inf, device=x.device)
    for _ in range(steps):
        _, v, g = batch.gradient(x, objective, rows, values=track != "none")
        if track == "point":
            best_x, best_v = keep_best(best_x, best_v, x, v)
        x = _step(batch, x, g, rows, radius, step, sparsity)
    z = batch.evaluate(x, rows)
    if track == "none":
        return x, None
    return keep_best(best_x, best_v, x, objective(z, rows))


def ascend_until_broken(
    batch: Batch,
    x: torch.Tensor,
    rows: torch.Tensor,
    weights: torch.Tensor,
    radius: float,
    steps: int,
    step: float,
) -> torch.Tensor:
    """The best value (M,) of v_j = <w_j, z(x_j)> (weights (M, K), one row per evaluated row) of each of
    the M rows (samples ``rows`` (M,), a sample may occur several times) over the iterates of ``ascend``
    from x (M, *S): ``steps`` gradient steps and a forward at the last iterate.

    A sample leaves once one of its rows is evaluated at a misclassified point (argmax z != y, first index
    among ties, as the recorder's zero_one): it is broken within the radius, and every one of its rows
    keeps the best value evaluated until then. Every row's steps are its own, so the values of the samples
    that never break are those of the full run; a broken sample costs only the steps until it broke."""
    best = torch.full((x.shape[0],), -math.inf, device=x.device)
    index = torch.arange(x.shape[0], device=x.device)  # positions of the live rows among the M
    objective = LinearObjective(weights, positional=True)
    for i in range(steps + 1):
        last = i == steps
        if last:
            z = batch.evaluate(x, rows)
            v = objective(z, rows)
        else:
            z, v, g = batch.gradient(x, objective, rows)
        best[index] = torch.maximum(best[index], v)
        if last:
            break
        broken = z.argmax(dim=1) != batch.y[rows]
        if bool(broken.any()):
            live = ~torch.isin(rows, rows[broken])
            if not bool(live.any()):
                break
            index, rows, x, g = index[live], rows[live], x[live], g[live]
            objective = LinearObjective(weights[index], positional=True)
        x = _step(batch, x, g, rows, radius, step)
    return best


def _step(
    batch: Batch,
    x: torch.Tensor,
    g: torch.Tensor,
    rows: torch.Tensor,
    radius: float | torch.Tensor,
    step: float,
    sparsity: float | None = None,
) -> torch.Tensor:
    """P_{B(x0_rows, radius) cap box}(x + step u(g)), written into the buffer of g (which it consumes)."""
    u = direction(g, x, batch.threat.norm, sparsity, inplace=True)
    return batch.project(torch.add(x, u, alpha=step, out=u), rows, radius, inplace=True)


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
