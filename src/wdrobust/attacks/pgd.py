"""``pgd``: projected steepest ascent of a loss on the point-wise ball B(x_i, eps) cap [0,1]^d.

x_{k+1} = P(x_k + eta u(grad l(x_k))) with u the sign (linf), the normalised gradient (l2) or the sparse
top-k step (l1, SLIDE-style: sign of the largest box-feasible coordinates, unit l1 norm).
"""

from __future__ import annotations

from wdrobust._options import Option, at_least, fraction, positive
from wdrobust.attacks.ascent import ascend
from wdrobust.attacks.base import DIFFERENTIABLE, Attack
from wdrobust.attacks.batch import Batch
from wdrobust.attacks.objectives import loss_objective


class PGD(Attack):
    """PGD with ``restarts`` random starts (the first from x_i when random_start is False).

    Options: steps (gradient steps per restart), step_size (eta / eps; default 2.5 / steps), loss
    (ce, margin or dlr), restarts, random_start, sparsity (fraction of coordinates of the l1 step).
    """

    name = "pgd"
    declared = (
        Option("steps", int, 40, at_least(1), "gradient steps per restart"),
        Option("step_size", float, None, positive(), "eta / eps (default 2.5 / steps)"),
        Option("loss", str, "ce", DIFFERENTIABLE, "the loss ascended"),
        Option("restarts", int, 1, at_least(1), "random starts"),
        Option("random_start", bool, True, None, "the first start is random too (else x_i)"),
        Option("sparsity", float, 0.05, fraction(), "fraction of coordinates of the l1 step"),
    )

    def attack_batch(self, batch: Batch) -> None:
        eps = self.threat.eps
        step_size = 2.5 / self.steps if self.step_size is None else self.step_size
        objective = loss_objective(self.loss, batch.y, batch.classes)
        rows = batch.all
        for restart in range(self.restarts):
            if rows.numel() == 0:
                break
            start = batch.random_start(rows, eps) if self.random_start or restart else batch.x0[rows]
            ascend(
                batch,
                start,
                rows,
                objective,
                eps,
                self.steps,
                step_size * eps,
                self.sparsity,
                track="none",
            )
            rows = rows[batch.recorder.flip[rows].isinf()]
