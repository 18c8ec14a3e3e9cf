"""``pgd``: projected steepest ascent of a loss on the point-wise ball B(x_i, eps) cap [0,1]^d.

x_{k+1} = P(x_k + eta u(grad l(x_k))) with u the sign (linf), the normalised gradient (l2) or the sparse
top-k step (l1, SLIDE-style: sign of the largest box-feasible coordinates, unit l1 norm).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from wdrobust.attacks.ascent import ascend
from wdrobust.attacks.base import Attack
from wdrobust.attacks.batch import Batch
from wdrobust.attacks.objectives import loss_objective
from wdrobust.losses import check_loss
from wdrobust.threat import ThreatModel


class PGD(Attack):
    """PGD with ``restarts`` random starts (the first from x_i when random_start is False).

    Options: steps (gradient steps per restart), step_size (eta / eps; default 2.5 / steps), loss
    (ce, margin or dlr), restarts, random_start, sparsity (fraction of coordinates of the l1 step).
    """

    name = "pgd"

    def __init__(
        self,
        model: nn.Module,
        threat: ThreatModel,
        *,
        steps: int = 40,
        step_size: float | None = None,
        loss: str = "ce",
        restarts: int = 1,
        random_start: bool = True,
        sparsity: float = 0.05,
        **common: Any,
    ) -> None:
        super().__init__(model, threat, **common)
        if steps < 1 or restarts < 1:
            raise ValueError(f"steps and restarts must be >= 1, got {steps}, {restarts}")
        if check_loss(loss) == "zero_one":
            raise ValueError("pgd needs a differentiable loss: ce, margin or dlr")
        if not 0 < sparsity <= 1:
            raise ValueError(f"sparsity must be in (0, 1], got {sparsity}")
        self.steps, self.loss, self.restarts = steps, loss, restarts
        self.step_size = 2.5 / steps if step_size is None else step_size
        self.random_start, self.sparsity = random_start, sparsity

    def attack_batch(self, batch: Batch) -> None:
        eps = self.threat.eps
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
                self.step_size * eps,
                self.sparsity,
                track="none",
            )
            rows = rows[batch.recorder.flip[rows].isinf()]
