"""Whole-box growth search: the worst points of the box for a label, offered to every sample of that label.

For t >= diam X the growth phi_i(t) = max_{x in X} l(x, y_i) - l(x_i, y_i): the maximiser depends on the
label only. So, once per class c of the batch, a multi-start steepest ascent of the margin
m_t(x) = z_t(x) - z_c(x) over the whole box (box clip only, no ball) runs from ``starts`` points: the
batch samples of other classes with the largest clean margin against c, and random corners of the box
(t = the largest non-c logit at the start). Step sizes diam (0.1, 0.03, 0.01), one third of the steps
each, warm-started from the best point. The ``offer`` best final points per class (by margin) become
candidates of every sample of class c, with their own distance to each sample (the recorder measures
it), so the primal solver can move a fraction of any sample there; for p < inf this is what a large
budget buys (docs/notation.md#growth-functions-and-majorants).
"""

from __future__ import annotations

import math

import torch

from wdrobust.attacks.ascent import keep_best
from wdrobust.attacks.batch import Batch
from wdrobust.attacks.objectives import LinearObjective, margin_weights
from wdrobust.attacks.steps import steepest_step

#: step sizes of the three phases, as fractions of the diameter of the box
PHASES = (0.1, 0.03, 0.01)


def whole_box_starts(batch: Batch, classes: torch.Tensor, starts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Starts (C starts, *S) and their labels (C starts,) for the classes (C,): per class up to starts / 2
    batch samples of other classes ranked by clean margin max_{j != c} z_j - z_c, the rest random corners."""
    points, labels = [], []
    from_data = starts // 2
    z0 = batch.z0
    col = torch.arange(z0.shape[1], device=z0.device)
    for c in classes.tolist():
        margin = z0.masked_fill(col == c, -math.inf).amax(1) - z0[:, c]
        margin = margin.masked_fill(batch.y == c, -math.inf)
        picked = margin.topk(min(from_data, int((batch.y != c).sum()))).indices
        corners = starts - picked.numel()
        shape = (corners, *batch.x0.shape[1:])
        u = torch.rand(shape, generator=batch.generator, device=batch.x0.device)
        points += [batch.x0[picked], (u < 0.5).to(batch.x0.dtype)]
        labels.append(torch.full((starts,), c, dtype=torch.int64, device=batch.x0.device))
    return torch.cat(points), torch.cat(labels)


def whole_box_search(batch: Batch, starts: int, steps: int, offer: int) -> None:
    """Run the search for every class present in the batch and offer the ``offer`` best points of each
    class to each of its samples (recorded candidates; the search iterates themselves are not candidates
    of any sample, but their passes are counted)."""
    classes = batch.y.unique()
    x, labels = whole_box_starts(batch, classes, starts)
    with torch.no_grad():
        z = batch.model(x)
    batch.passes.forward += x.shape[0]
    target = z.scatter(1, labels[:, None], -math.inf).argmax(1)
    objective = LinearObjective(margin_weights(labels, target, batch.classes), positional=True)
    rows = torch.arange(x.shape[0], device=x.device)
    diam = batch.threat.diameter(x[0].numel())
    best_x, best_v = x, objective.value(z, rows)
    per_phase = max(1, steps // len(PHASES))
    for fraction in PHASES:
        x = best_x
        for _ in range(per_phase):
            _, v, g = batch.gradient(x, objective, rows, record=False)
            best_x, best_v = keep_best(best_x, best_v, x, v)
            u = steepest_step(g, x, batch.threat.norm, inplace=True)
            x = torch.add(x, u, alpha=fraction * diam, out=u).clamp_(0.0, 1.0)
        with torch.no_grad():
            z = batch.model(x)
        batch.passes.forward += x.shape[0]
        best_x, best_v = keep_best(best_x, best_v, x, objective.value(z, rows))
    offer_points(batch, classes, best_x, best_v, starts, offer)


def offer_points(
    batch: Batch, classes: torch.Tensor, points: torch.Tensor, value: torch.Tensor, starts: int, offer: int
) -> None:
    """Offer, per class (C,), the ``offer`` best of its ``starts`` points (C starts, *S) by value to every
    batch sample of the class: one forward of the C offer points, logits shared by all the samples."""
    k = min(offer, starts)
    best = (
        value.reshape(-1, starts).topk(k, dim=1).indices
        + starts * torch.arange(classes.numel(), device=value.device)[:, None]
    )
    chosen = points[best.reshape(-1)]  # (C k, *S), class-major
    with torch.no_grad():
        z = batch.model(chosen)
    batch.passes.forward += chosen.shape[0]
    slot = torch.searchsorted(classes, batch.y)  # each sample's class position
    rows = batch.all.repeat_interleave(k)  # sample i gets its class's k points
    pick = (slot[:, None] * k + torch.arange(k, device=slot.device)).reshape(-1)
    batch.offer(chosen[pick], z[pick], rows)
