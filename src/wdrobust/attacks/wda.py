"""``wda``: the Wasserstein distributional attack (docs/notation.md#the-primal-form).

Per sample, a target class j* among the top-k non-true classes (by clean logit) is chosen, either by
probing (a few fixed-target ascent steps of m_j = z_j - z_y for all k candidates at once, the batch
repeated k times; a sample leaves the probe once one of its iterates is misclassified) or by the largest
dual norm ||grad m_j(x_i)||_*. Then m_{j*} is ascended along the
dual-norm maximiser with projection onto B(x_i, r) cap [0,1]^d, over the radii r of ``Budget.schedule``
(warm-started from the best point of the previous radius). For p = inf this is the point-wise attack at
r = eps; for p < inf the larger radii let the primal solver move a few samples far and leave the rest.

Cost at p < inf: every step moves eta = step_size r / steps (an eighth of r by default), so a cold start
needs steps / step_size steps to cross the ball, but a radius warm-started from the best point of radius
r' = r / rho (rho = (r_max / eps)^(1/(radii - 1)), 1.23 for 12 radii over a ratio of 10) reaches its sphere
in (1 - 1 / rho) steps / step_size (1.5 by default): the first radius takes ``steps`` steps, each later one
a quarter of them (``warm_steps``). Many close radii with few steps find closer flips, which the zero_one
knapsack pays d_i^p for, than a few radii with many steps (measured: docs/attacks.md#wda-cost).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from wdrobust._options import Option, at_least, one_of, positive
from wdrobust.attacks.ascent import ascend, ascend_until_broken
from wdrobust.attacks.base import Attack
from wdrobust.attacks.batch import Batch
from wdrobust.attacks.objectives import LinearObjective, margin_weights
from wdrobust.attacks.whole_box import whole_box_search

TARGET_RULES = ("probe", "dual_norm")
#: Steps of a warm-started radius, as a fraction of the first radius's ``steps``.
WARM_FRACTION = 0.25
PROBE_METRICS = ("margin", "gain")


def repeated_weights(y: torch.Tensor, targets: torch.Tensor, classes: int) -> torch.Tensor:
    """Weights (k m, K) of m_t = z_t - z_y for samples with labels y (m,) repeated k times: targets (m, k)
    -> row block j uses column j."""
    k = targets.shape[1]
    return margin_weights(y.repeat(k), targets.T.reshape(-1), classes)


def repeated_margin(y: torch.Tensor, targets: torch.Tensor, classes: int) -> LinearObjective:
    """Objective m_t = z_t - z_y over the rows of ``repeated_weights`` (positional weights)."""
    return LinearObjective(repeated_weights(y, targets, classes), positional=True)


def rank_targets(
    batch: Batch,
    rows: torch.Tensor,
    candidates: torch.Tensor,
    rule: str,
    probe_steps: int,
    metric: str,
    step_size: float,
) -> torch.Tensor:
    """Scores (m, k) of the candidate targets (m, k) of the samples rows (m,) (higher = better), from one
    batched pass per step over those samples repeated k times. probe: the best m_j after ``probe_steps``
    ascent steps at radius eps (metric "margin"), or its increase over the clean m_j (metric "gain"); a
    sample leaves the probe once one of its iterates is misclassified (``ascend_until_broken``: a flip within
    eps is recorded, its ranking is that of the steps until then, the others' scores are unchanged);
    dual_norm: ||grad m_j(x_i)||_*."""
    m, k = candidates.shape
    x0 = batch.x0 if rows is batch.all else batch.x0[rows]
    weights = repeated_weights(batch.y[rows], candidates, batch.classes)
    x = x0.repeat(k, *([1] * (x0.dim() - 1)))
    rows = rows.repeat(k)
    if rule == "dual_norm":
        _, _, g = batch.gradient(x, LinearObjective(weights, positional=True), rows)
        return batch.threat.dual_norm(g).reshape(k, m).T
    eps = batch.threat.eps
    best = ascend_until_broken(batch, x, rows, weights, eps, probe_steps, step_size * eps / probe_steps)
    scores = best.reshape(k, m).T
    if metric == "gain":
        z0 = batch.z0[rows[:m]]
        scores = scores - z0.gather(1, candidates) + z0.gather(1, batch.y[rows[:m], None])
    return scores


class WDA(Attack):
    """Wasserstein distributional attack. Options: k (targets probed, capped at K - 1), target
    ("probe" or "dual_norm"), probe_steps, probe_metric ("margin" or "gain"), steps (per radius),
    radii (number of radii of the schedule for p < inf; each after the first takes ``warm_steps``),
    step_size (eta = step_size r / steps per step); for p < inf the
    whole-box search (``whole_box``) ends the schedule: whole_box (starts per class, 0 = off),
    whole_box_steps, offer (points offered to each sample)."""

    name = "wda"
    declared = (
        Option("k", int, 3, at_least(1), "targets probed (capped at K - 1)"),
        Option("target", str, "probe", one_of(*TARGET_RULES), "how the target class is chosen"),
        Option("probe_steps", int, 3, at_least(1), "ascent steps of the probe"),
        Option("probe_metric", str, "margin", one_of(*PROBE_METRICS), "what ranks the probed targets"),
        Option("steps", int, 20, at_least(1), "ascent steps per radius"),
        Option("radii", int, 12, at_least(1), "radii of the schedule (p < inf)"),
        Option("step_size", float, 2.5, positive(), "eta / r per step"),
        Option("whole_box", int, 16, at_least(0), "whole-box search starts per class (0 = off)"),
        Option("whole_box_steps", int, 30, at_least(1), "steps of the whole-box search"),
        Option("offer", int, 4, at_least(1), "whole-box points offered to each sample"),
    )

    def ranked_targets(self, batch: Batch, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The top-min(k, K-1) non-true classes of the samples rows (default: the batch), (m, k), sorted
        best first by the rule."""
        rows = batch.all if rows is None else rows
        candidates = batch.top_targets(min(self.k, batch.classes - 1))
        candidates = candidates if rows is batch.all else candidates[rows]
        if candidates.shape[1] == 1:
            return candidates
        scores = rank_targets(
            batch, rows, candidates, self.target, self.probe_steps, self.probe_metric, self.step_size
        )
        return candidates.gather(1, scores.argsort(dim=1, descending=True))

    def attack_batch(self, batch: Batch) -> None:
        rows = batch.active()
        if rows.numel():
            target = self.ranked_targets(batch, rows)[:, 0]
            objective = LinearObjective(margin_weights(batch.y[rows], target, batch.classes), positional=True)
            x0 = batch.x0 if rows is batch.all else batch.x0[rows]
            self.ascend_radii(batch, x0, rows, objective, self.schedule(batch), self.warm_steps)
        if self.whole_box and not math.isinf(self.threat.p) and self.threat.eps > 0:
            whole_box_search(batch, self.whole_box, self.whole_box_steps, self.offer)

    def schedule(self, batch: Batch) -> list[float]:
        """The radii of the run's budget schedule (``Budget.schedule``; eps only for p = inf)."""
        return batch.budget.schedule(batch.x0[0].numel(), self.radii)

    @property
    def warm_steps(self) -> int:
        """Steps of a warm-started radius: ceil(WARM_FRACTION steps)."""
        return math.ceil(WARM_FRACTION * self.steps)

    def ascend_radii(
        self,
        batch: Batch,
        x: torch.Tensor,
        rows: torch.Tensor,
        objective: Any,
        radii: list[float],
        later: int | None = None,
    ) -> None:
        """Steepest ascent of the objective at each radius r in turn with step eta = step_size r / steps,
        warm-started from the previous best: ``steps`` steps at the first radius, ``later`` (default
        ``steps``) at each further one (the last radius tracks nothing: its iterates are recorded)."""
        for i, r in enumerate(radii):
            track = "point" if i < len(radii) - 1 else "none"
            steps = self.steps if i == 0 or later is None else later
            x, _ = ascend(batch, x, rows, objective, r, steps, self.step_size * r / self.steps, track=track)
