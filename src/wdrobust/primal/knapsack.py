"""Fractional knapsack over items (slope sigma_e, cost c_e): fill a budget B by decreasing slope.

The optimum takes every item with sigma above a threshold whole and at most one item partly. Instead of
sorting all E items (O(E log E)), the threshold is found by a weighted quickselect: a pivot guessed from
a small deterministic subsample, one pass to split the items at the pivot, recurse into the side that holds
the threshold. Only the last few thousand items are sorted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SORT_BELOW = 1 << 14
_SUBSAMPLE = 2048


@dataclass(frozen=True)
class Fill:
    """Result of a fill: ``full`` (E,) bool items taken whole; ``partial`` index of the item taken with
    fraction ``fraction`` in (0, 1) (-1 and 0.0 when none); ``spent`` the cost used (<= budget)."""

    full: np.ndarray
    partial: int
    fraction: float
    spent: float


def _guess_pivot(sigma: np.ndarray, cost: np.ndarray, need: float, total: float) -> float:
    """A slope near the threshold, from a deterministic subsample's cost profile."""
    step = max(1, sigma.size // _SUBSAMPLE)
    sub_sigma, sub_cost = sigma[::step], cost[::step]
    order = np.argsort(-sub_sigma)
    profile = np.cumsum(sub_cost[order])
    target = need / total * profile[-1] if total > 0 else 0.0
    k = min(int(np.searchsorted(profile, target)), order.size - 1)
    return float(sub_sigma[order[k]])


def greedy_fill(sigma: np.ndarray, cost: np.ndarray, budget: float) -> Fill:
    """Take items in order of decreasing sigma until the budget is spent, the last one fractionally.

    sigma, cost: (E,) float arrays, cost >= 0. Ties in sigma are broken arbitrarily (callers that need an
    order among equal slopes must not create ties). Returns the items taken whole and the partial item;
    the value sum_full g + fraction * g_partial is the fractional-knapsack optimum for any gains g = sigma*c.
    """
    full = np.zeros(sigma.size, dtype=bool)
    idx = np.arange(sigma.size)
    spent = 0.0
    while idx.size > _SORT_BELOW:
        s, c = sigma[idx], cost[idx]
        pivot = _guess_pivot(s, c, budget - spent, float(c.sum()))
        upper = s > pivot
        if not upper.any():  # the pivot is the largest slope: take the tie group whole or stop in it
            tie = s == pivot
            tie_cost = float(c[tie].sum())
            if spent + tie_cost > budget:
                idx = idx[tie]
                break
            full[idx[tie]] = True
            spent += tie_cost
            idx = idx[~tie]
            continue
        up_cost = float(c[upper].sum())
        if spent + up_cost > budget:
            idx = idx[upper]
        else:
            full[idx[upper]] = True
            spent += up_cost
            idx = idx[~upper]
    order = idx[np.argsort(-sigma[idx], kind="stable")]
    cum = spent + np.cumsum(cost[order])
    n_full = int(np.searchsorted(cum, budget, side="right"))
    full[order[:n_full]] = True
    if n_full:
        spent = float(cum[n_full - 1])
    if n_full == order.size:
        return Fill(full, -1, 0.0, spent)
    item = int(order[n_full])
    room = budget - spent
    if room <= 0 or cost[item] <= 0:
        return Fill(full, -1, 0.0, spent)
    fraction = min(1.0, room / float(cost[item]))
    return Fill(full, item, fraction, spent + fraction * float(cost[item]))
