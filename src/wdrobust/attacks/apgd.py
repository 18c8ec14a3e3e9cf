"""``apgd``: AutoAttack's APGD-CE / APGD-DLR (Croce & Hein, ICML 2020), written from the paper's rules.

z = P(x_k + eta_k u(grad f(x_k))),  x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_{k-1})),
alpha = 0.75 (1 at the first step), eta_0 = 2 eps. At the checkpoints w_j = ceil(p_j N_iter) with
p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), a sample's step is halved and its
iterate restarted from its best point when (1) f increased in fewer than rho = 0.75 of the steps since the
last checkpoint, or (2) its step was not halved at the last checkpoint and its best value did not improve.

Early stop: when zero_one is the only recorded loss and p = inf (a robust-accuracy run), a sample leaves
the ascent once a point of its path is misclassified (or it is clean-misclassified): its result, a flip
within eps, is final, and every row's steps depend on its own state only, so the others' iterates are
unchanged. With ce, margin or dlr recorded every sample runs all n_iter steps: those losses are
unbounded, and each later iterate may raise the sample's gain, which their lower bounds take (the best gain
within eps at p = inf, the concave envelope of the (t, gain) points at p < inf); at p < inf a later
iterate may also flip a sample closer, which the zero_one knapsack over d_i^p pays for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from wdrobust._options import Option, at_least, fraction, one_of
from wdrobust.attacks.ascent import improve_, keep_best
from wdrobust.attacks.base import Attack
from wdrobust.attacks.batch import Batch
from wdrobust.attacks.objectives import Objective, loss_objective
from wdrobust.attacks.steps import direction, move

RHO = 0.75
ALPHA = 0.75


def checkpoints(n_iter: int) -> set[int]:
    """Iterations w_j = ceil(p_j n_iter), 0 < w_j < n_iter, with p_1 = 0.22 and
    p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) (p_j n_iter rounded to 1e-9 first: 0.57 * 100 -> 57)."""
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return {w for w in (math.ceil(round(q * n_iter, 9)) for q in p[1:]) if 0 < w < n_iter}


@dataclass
class _Rows:
    """APGD's per-row state, every tensor on the live rows (first axis m): the batch rows and their
    positions in the caller's start, the iterate x, its predecessor, the next iterate, the gradient, the
    best point, gradient and value, the value at x, the step size and the checkpoint statistics."""

    rows: torch.Tensor
    index: torch.Tensor
    x: torch.Tensor
    x_prev: torch.Tensor
    x_new: torch.Tensor
    g: torch.Tensor
    best_x: torch.Tensor
    best_g: torch.Tensor
    best_v: torch.Tensor
    v_cur: torch.Tensor
    eta: torch.Tensor
    increases: torch.Tensor
    last_best: torch.Tensor
    reduced_last: torch.Tensor

    def keep(self, mask: torch.Tensor) -> None:
        """Drop the rows where mask (m,) is False from every tensor."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name)[mask])


def apgd_ascent(
    batch: Batch,
    x: torch.Tensor,
    rows: torch.Tensor,
    objective: Objective,
    radius: float,
    n_iter: int,
    sparsity: float | None = None,
    retire_broken: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """APGD from the start x (m, *S) of samples rows (m,) on B(x0, radius): n_iter gradient evaluations
    and one final forward. Returns the best iterate (m, *S) and its objective value (m,).

    ``retire_broken``: a row leaves the run once its sample is clean-misclassified or its last evaluated
    point is misclassified (every row's steps are its own, so the others' iterates are unchanged); its best
    iterate and value are those evaluated until then. For an attack whose result is only the zero_one
    candidates at p = inf (see ``APGD.attack_batch``)."""
    m, norm = x.shape[0], batch.threat.norm
    x = x.clone()  # x, x_prev, g and the best_* are owned here: checkpoints update rows in place, and
    # each step's direction and move are written into the buffer of its gradient g
    z, v, g = batch.gradient(x, objective, rows)
    s = _Rows(
        rows=rows,
        index=torch.arange(m, device=x.device),
        x=x,
        x_prev=x,
        x_new=x,
        g=g,
        best_x=x.clone(),
        best_g=g.clone(),
        best_v=v,
        v_cur=v,
        eta=torch.full((m,), 2.0 * radius, device=x.device),
        increases=torch.zeros(m, device=x.device),
        last_best=v.clone(),
        reduced_last=torch.zeros(m, dtype=torch.bool, device=x.device),
    )
    # retire_broken: the clean-misclassified samples, and the result of every row, written when it retires
    wrong = batch.recorder.clean["zero_one"] > 0
    out = (x.clone(), v.clone()) if retire_broken else None
    s.x_new = batch.project(
        move(x, s.eta, direction(g, x, norm, sparsity, inplace=True), inplace=True),
        rows,
        radius,
        inplace=True,
    )
    checks, last_check = checkpoints(n_iter), 0
    for k in range(1, n_iter):
        if out is not None and not _retire(s, z, batch.y, wrong, out):
            return out
        z, v, s.g = batch.gradient(s.x_new, objective, s.rows)
        s.increases += (v > s.v_cur).float()
        better = v > s.best_v
        improve_(s.best_g, s.g, better)
        improve_(s.best_x, s.x_new, better)
        s.best_v = torch.where(better, v, s.best_v)
        s.x_prev, s.x, s.v_cur = s.x, s.x_new, v
        if k in checks:
            reduce = (s.increases < RHO * (k - last_check)) | (~s.reduced_last & (s.best_v <= s.last_best))
            s.eta = torch.where(reduce, s.eta / 2, s.eta)
            improve_(s.x, s.best_x, reduce)
            improve_(s.x_prev, s.best_x, reduce)
            improve_(s.g, s.best_g, reduce)
            s.v_cur = torch.where(reduce, s.best_v, s.v_cur)
            s.last_best, s.reduced_last, last_check = s.best_v.clone(), reduce, k
            s.increases.zero_()
        step = batch.project(
            move(s.x, s.eta, direction(s.g, s.x, norm, sparsity, inplace=True), inplace=True),
            s.rows,
            radius,
            inplace=True,
        )
        # x + alpha (z - x) + (1 - alpha)(x - x_prev) = lerp(2 x - x_prev, z, alpha): two passes, written
        # into the buffers of x_prev and z, which are not needed afterwards
        s.x_new = torch.lerp(torch.lerp(s.x_prev, s.x, 2.0, out=s.x_prev), step, ALPHA, out=step)
        s.x_new = batch.project(s.x_new, s.rows, radius, inplace=True)
    if out is not None and not _retire(s, z, batch.y, wrong, out):
        return out
    v = objective(batch.evaluate(s.x_new, s.rows), s.rows)
    best = keep_best(s.best_x, s.best_v, s.x_new, v)
    if out is None:
        return best
    out[0][s.index], out[1][s.index] = best
    return out


def _retire(
    s: _Rows, z: torch.Tensor, y: torch.Tensor, wrong: torch.Tensor, out: tuple[torch.Tensor, torch.Tensor]
) -> bool:
    """Retire the rows whose sample is clean-misclassified (wrong (n,)) or whose logits z (m, K) at the last
    evaluated point misclassify it (argmax z != y, first index among ties, as the recorder's zero_one):
    their best point and value go to out = (points (M, *S), values (M,)); False when no row is left."""
    broken = (z.argmax(dim=1) != y[s.rows]) | wrong[s.rows]
    if bool(broken.any()):
        out[0][s.index[broken]], out[1][s.index[broken]] = s.best_x[broken], s.best_v[broken]
        s.keep(~broken)
    return s.rows.numel() > 0


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
        # zero_one alone at p = inf: the result is which samples have a flip within eps; once a sample is
        # broken (or clean-misclassified) its later candidates change nothing, so its rows retire
        retire = batch.recorder.losses == ("zero_one",) and math.isinf(self.threat.p)
        rows = batch.all
        for _ in range(self.restarts):
            if rows.numel() == 0:
                break
            start = batch.random_start(rows, self.threat.eps)
            apgd_ascent(batch, start, rows, objective, self.threat.eps, self.n_iter, self.sparsity, retire)
            rows = rows[batch.recorder.flip[rows].isinf()]
