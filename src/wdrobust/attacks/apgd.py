"""``apgd``: AutoAttack's APGD-CE / APGD-DLR (Croce & Hein, ICML 2020), written from the paper's rules.

z = P(x_k + eta_k u(grad f(x_k))),  x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_{k-1})),
alpha = 0.75 (1 at the first step), eta_0 = 2 eps. At the checkpoints w_j = ceil(p_j N_iter) with
p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), a sample's step is halved and its
iterate restarted from its best point when (1) f increased in fewer than rho = 0.75 of the steps since the
last checkpoint, or (2) its step was not halved at the last checkpoint and its best value did not improve.
"""

from __future__ import annotations

import math

import torch

from wdrobust._options import Option, at_least, fraction, one_of
from wdrobust.attacks._engine import (
    Batch,
    Objective,
    direction,
    improve_,
    keep_best,
    loss_objective,
    move,
)
from wdrobust.attacks.base import Attack

RHO = 0.75
ALPHA = 0.75


def checkpoints(n_iter: int) -> set[int]:
    """Iterations w_j = ceil(p_j n_iter), 0 < w_j < n_iter, with p_1 = 0.22 and
    p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) (p_j n_iter rounded to 1e-9 first: 0.57 * 100 -> 57)."""
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return {w for w in (math.ceil(round(q * n_iter, 9)) for q in p[1:]) if 0 < w < n_iter}


def apgd_ascent(
    batch: Batch,
    x: torch.Tensor,
    rows: torch.Tensor,
    objective: Objective,
    radius: float,
    n_iter: int,
    sparsity: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """APGD from the start x (m, *S) of samples rows (m,) on B(x0, radius): n_iter gradient evaluations
    and one final forward. Returns the best iterate (m, *S) and its objective value (m,)."""
    m, norm = x.shape[0], batch.threat.norm
    eta = torch.full((m,), 2.0 * radius, device=x.device)
    checks = checkpoints(n_iter)
    x = x.clone()  # x, x_prev, g and the best_* are owned here: checkpoints update rows in place, and
    # each step's direction and move are written into the buffer of its gradient g
    _, v, g = batch.gradient(x, objective, rows)
    best_x, best_v, best_g = x.clone(), v, g.clone()
    x_prev, v_cur = x, v
    x_new = batch.project(
        move(x, eta, direction(g, x, norm, sparsity, inplace=True), inplace=True), rows, radius, inplace=True
    )
    increases = torch.zeros(m, device=x.device)
    last_best, reduced_last, last_check = best_v.clone(), torch.zeros(m, dtype=torch.bool, device=x.device), 0
    for k in range(1, n_iter):
        _, v, g = batch.gradient(x_new, objective, rows)
        increases += (v > v_cur).float()
        better = v > best_v
        improve_(best_g, g, better)
        improve_(best_x, x_new, better)
        best_v = torch.where(better, v, best_v)
        x_prev, x, v_cur = x, x_new, v
        if k in checks:
            reduce = (increases < RHO * (k - last_check)) | (~reduced_last & (best_v <= last_best))
            eta = torch.where(reduce, eta / 2, eta)
            improve_(x, best_x, reduce)
            improve_(x_prev, best_x, reduce)
            improve_(g, best_g, reduce)
            v_cur = torch.where(reduce, best_v, v_cur)
            last_best, reduced_last, last_check = best_v.clone(), reduce, k
            increases.zero_()
        z = batch.project(
            move(x, eta, direction(g, x, norm, sparsity, inplace=True), inplace=True),
            rows,
            radius,
            inplace=True,
        )
        # x + alpha (z - x) + (1 - alpha)(x - x_prev) = lerp(2 x - x_prev, z, alpha): two passes, written
        # into the buffers of x_prev and z, which are not needed afterwards
        x_new = torch.lerp(torch.lerp(x_prev, x, 2.0, out=x_prev), z, ALPHA, out=z)
        x_new = batch.project(x_new, rows, radius, inplace=True)
    v = objective(batch.evaluate(x_new, rows), rows)
    return keep_best(best_x, best_v, x_new, v)


class APGD(Attack):
    """APGD-CE (loss="ce") or APGD-DLR (loss="dlr", K >= 3), ``restarts`` random starts on the samples
    not yet misclassified. Options: n_iter (gradient steps per restart), loss, restarts, sparsity (l1)."""

    name = "apgd"
    declared = (
        Option("n_iter", int, 100, at_least(1), "gradient steps per restart"),
        Option("loss", str, "ce", one_of("ce", "dlr"), "APGD-CE or APGD-DLR"),
        Option("restarts", int, 1, at_least(1), "random starts"),
        Option("sparsity", float, 0.05, fraction(), "fraction of coordinates of the l1 step"),
    )

    def attack_batch(self, batch: Batch) -> None:
        if self.loss == "dlr" and batch.classes < 3:
            raise ValueError(f"APGD-DLR needs at least 3 classes, the model has {batch.classes}")
        objective = loss_objective(self.loss, batch.y, batch.classes)
        rows = batch.all
        for _ in range(self.restarts):
            if rows.numel() == 0:
                break
            start = batch.random_start(rows, self.threat.eps)
            apgd_ascent(batch, start, rows, objective, self.threat.eps, self.n_iter, self.sparsity)
            rows = rows[batch.recorder.flip[rows].isinf()]
