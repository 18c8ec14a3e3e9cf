"""Branching score for ReLU splits (BaBSR-like, Bunel et al. 2020).

For an unstable neuron k (l_k < 0 < u_k) of a domain, the CROWN pass of the domain's worst open margin
row bounds relu(z_k) from above by the chord a z_k + b_k with intercept b_k = -u_k l_k / (u_k - l_k) > 0
when its coefficient lambda_k > 0; a split replaces the chord by an exact piece and removes that
intercept, so the first-order gain is

    score_k = max(lambda_k, 0) b_k + TIE |lambda_k| (u_k - l_k),

the second term (TIE small) ranking the neurons whose intercept does not enter the bound (lambda_k <= 0)
by how much of the bound's slack they can carry. Stable or already split neurons score -inf. The choice
only steers the search; soundness never depends on it.
"""

from __future__ import annotations

import torch

#: Weight of the width term that breaks ties between neurons with no intercept gain.
TIE = 1e-4


def choose_neurons(
    lo: list[torch.Tensor], hi: list[torch.Tensor], lam: list[torch.Tensor], count: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(node (D, count), neuron (D, count), found (D,) long): the count best-scoring unstable neurons per
    domain over all split nodes, best first (lo, hi, lam: per node (D, n)); found: how many of them are
    unstable (the entries past it are not)."""
    scores = []
    for low, u, a in zip(lo, hi, lam, strict=True):
        unstable = (low < 0) & (u > 0)
        width = torch.where(unstable, u - low, torch.ones_like(low))
        intercept = -u * low / width
        s = a.clamp(min=0) * intercept + TIE * a.abs() * width
        scores.append(torch.where(unstable, s, torch.full_like(s, -torch.inf)))
    flat = torch.cat(scores, dim=1)
    top, best = flat.topk(min(count, flat.shape[1]), dim=1)
    sizes = torch.tensor([s.shape[1] for s in scores], device=flat.device)
    ends = sizes.cumsum(0)
    node = torch.searchsorted(ends, best, right=True)
    neuron = best - (ends - sizes)[node]
    return node, neuron, torch.isfinite(top).sum(dim=1)
