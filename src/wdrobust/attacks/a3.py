"""``a3`` (Adaptive AutoAttack, Liu et al., CVPR 2022) and ``a3-wda`` (WDA as A3's inner attack).

Our reading of the method, written from its description:
- Adaptive direction initialisation (ADI): each restart starts from output-diversified steps
  x <- P(x + eps/s u(grad_x <w_i, z(x)>)) (s = ods_steps) with w_i = U(-1, 1)^K + b_{y_i}: the uniform
  ODS weights biased by b_c, the mean unit logit shift z(x_adv) - z(x) of the samples of class c broken so
  far in the batch (zero before any success), so later starts lean toward directions that worked.
- Online statistics-based discarding (OSD): after every restart, broken samples leave, and so do the
  hard ones: samples whose best margin max_{j != y} z_j - z_y within eps lies more than ``discard``
  standard deviations below the mean of the samples still attacked.
- Restarts on a schedule: ``restarts`` restarts of ``n_iter`` APGD iterations each; a3 alternates the
  CE and DLR losses (margin when K < 3), a3-wda ascends WDA's targeted margin, the r-th restart taking
  the r-th ranked target of WDA's probe, and for p < inf continues over WDA's radius schedule.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from wdrobust._options import Option, at_least, pick, positive
from wdrobust.attacks.apgd import apgd_ascent
from wdrobust.attacks.base import Attack
from wdrobust.attacks.batch import Batch
from wdrobust.attacks.objectives import LinearObjective, Objective, loss_objective, target_margin
from wdrobust.attacks.steps import direction
from wdrobust.attacks.wda import WDA, rank_targets
from wdrobust.threat import ThreatModel


class A3(Attack):
    """Adaptive AutoAttack. Options: restarts, n_iter (APGD iterations per restart), ods_steps,
    discard (standard deviations below the mean for OSD; inf keeps every sample)."""

    name = "a3"
    recorded = ("zero_one", "margin")  # OSD reads each sample's best recorded margin
    declared = (
        Option("restarts", int, 4, at_least(1), "restarts"),
        Option("n_iter", int, 25, at_least(1), "APGD iterations per restart"),
        Option("ods_steps", int, 2, at_least(1), "output-diversified steps of each start"),
        Option("discard", float, 2.0, positive(), "OSD: standard deviations below the mean (inf: keep all)"),
    )

    def objective(self, batch: Batch, restart: int) -> Objective:
        """The restart's loss: CE on even restarts, DLR (margin if K < 3) on odd ones."""
        name = "ce" if restart % 2 == 0 else ("dlr" if batch.classes >= 3 else "margin")
        return loss_objective(name, batch.y, batch.classes)

    def inner(self, batch: Batch, start: torch.Tensor, rows: torch.Tensor, restart: int) -> torch.Tensor:
        """APGD on the restart's objective from ``start``; returns the best iterate."""
        eps = self.threat.eps
        best, _ = apgd_ascent(batch, start, rows, self.objective(batch, restart), eps, self.n_iter)
        return best

    def prepare(self, batch: Batch) -> None:
        """Per-batch set-up before the restarts (none for a3)."""

    def attack_batch(self, batch: Batch) -> None:
        self.prepare(batch)
        eps, k = self.threat.eps, batch.classes
        bias = torch.zeros(k, k, device=batch.x0.device)
        rows = batch.all[batch.recorder.flip > eps]
        for restart in range(self.restarts):
            if rows.numel() == 0:
                break
            start = self.adi_start(batch, rows, bias)
            best = self.inner(batch, start, rows, restart)
            broken = batch.recorder.flip[rows] <= eps
            if broken.any():
                z = batch.evaluate(best[broken], rows[broken])
                shift = torch.nn.functional.normalize(z - batch.z0[rows[broken]], dim=1)
                total = torch.zeros_like(bias).index_add_(0, batch.y[rows[broken]], shift)
                bias = torch.nn.functional.normalize(bias + total, dim=1)
            rows = rows[~broken]
            rows = rows[~self.hard(batch, rows)]

    def adi_start(self, batch: Batch, rows: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Biased output-diversified start: ods_steps ascent steps of <w_i, z(x)>, w_i = U(-1,1)^K + b_y."""
        k = batch.classes
        u = torch.rand(rows.numel(), k, generator=batch.generator, device=batch.x0.device) * 2 - 1
        w = u + bias[batch.y[rows]]
        ods = LinearObjective(w, positional=True)
        eps, x = self.threat.eps, batch.x0[rows]
        for _ in range(self.ods_steps):
            _, _, g = batch.gradient(x, ods, rows)
            x = batch.project(x + eps / self.ods_steps * direction(g, x, self.threat.norm), rows, eps)
        return x

    def hard(self, batch: Batch, rows: torch.Tensor) -> torch.Tensor:
        """OSD: rows (m,) whose best margin within eps is below mean - discard * std of the m rows."""
        if rows.numel() < 2:
            return torch.zeros(rows.numel(), dtype=torch.bool, device=rows.device)
        rec = batch.recorder
        t, gains, _ = rec.columns()
        t, gain = t[rows], gains["margin"][rows]
        best = (
            torch.where(t <= self.threat.eps, gain, -torch.inf).amax(1).clamp(min=0)
            + rec.clean["margin"][rows]
        )
        return best < best.mean() - self.discard * best.std()


class A3WDA(A3):
    """A3 with WDA as the inner attack (targeted margin of the r-th ranked target, WDA's probe).
    Extra options: k, target, probe_steps, probe_metric, steps and radii (WDA's declarations; k and
    restarts default to 9)."""

    name = "a3-wda"
    declared = (
        *pick(WDA.option_table(), "target", "probe_steps", "probe_metric", "steps", "radii", k=9),
        *pick(A3.option_table(), restarts=9),
    )

    def __init__(self, model: nn.Module, threat: ThreatModel, **kwargs: Any) -> None:
        super().__init__(model, threat, **kwargs)
        shared = {o.name: getattr(self, o.name) for o in self.declared if o.name in WDA.option_table()}
        self.wda = WDA(model, threat, device=self.device, **shared)
        self.ranked = torch.empty(0)

    def prepare(self, batch: Batch) -> None:
        """Rank the targets once per batch with WDA's probe, in stages of doubling size over the k
        candidates in clean-logit order (1, 2, 4, ... targets), each stage on the samples that no earlier
        one broke within eps (none clean-misclassified). A broken sample leaves before the restarts (its
        ranking is never read), and each row's probe depends on its own state only, so the survivors get the
        ranking of one probe of all k targets; a sample first broken by its r-th target costs the probes of
        fewer than 2 r targets instead of k (and the probe itself retires it once broken)."""
        wda = self.wda
        candidates = batch.top_targets(min(wda.k, batch.classes - 1))
        if candidates.shape[1] == 1 or wda.target != "probe":
            self.ranked = wda.ranked_targets(batch)
            return
        rule = (wda.probe_steps, wda.probe_metric, wda.step_size)
        scores = torch.full(candidates.shape, -torch.inf, device=candidates.device)
        start, size = 0, 1
        left = batch.all[batch.recorder.flip > self.threat.eps]
        while start < candidates.shape[1] and left.numel():
            stop = min(start + size, candidates.shape[1])
            scores[left, start:stop] = rank_targets(batch, left, candidates[left, start:stop], "probe", *rule)
            left = left[batch.recorder.flip[left] > self.threat.eps]
            start, size = stop, 2 * size
        self.ranked = candidates.gather(1, scores.argsort(dim=1, descending=True))

    def inner(self, batch: Batch, start: torch.Tensor, rows: torch.Tensor, restart: int) -> torch.Tensor:
        """APGD on m_{t_r} (t_r the restart's ranked target) at eps, then WDA's larger radii for p < inf."""
        target = self.ranked[:, restart % self.ranked.shape[1]]
        objective = target_margin(batch.y, target, batch.classes)
        eps = self.threat.eps
        best, _ = apgd_ascent(batch, start, rows, objective, eps, self.n_iter)
        self.wda.ascend_radii(batch, best, rows, objective, self.wda.schedule(batch)[1:])
        return best
