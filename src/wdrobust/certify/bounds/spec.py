"""Bounds of a general linear specification C f(x) + d over input regions (VNN-LIB properties).

A VNN-LIB property's counterexample condition is a disjunction of conjunctions: disjunct k holds at x when
every row of C_k f(x) + d_k is <= 0. ``spec_lower`` gives lower bounds L_bm <= min over the region X_b of
c_bm . f(x) + d_bm, computed as d - U(-c) where U(-c) >= max over X_b of -c . f(x) is the engine's upper
bound (interval propagation, or CROWN with the given intermediate mode and alpha steps).

Soundness of ``refuted``: if L_bm > 0 for some row m of disjunct k, then for every x in X_b the row
c_bm . f(x) + d_bm >= L_bm > 0, so that row is never <= 0 and disjunct k never holds on X_b. A property
whose every disjunct is refuted has no counterexample in the region (``unsat``).
"""

from __future__ import annotations

import torch

from wdrobust.certify.bounds.graph import BoundGraph
from wdrobust.certify.bounds.propagation import margin_bounds
from wdrobust.certify.bounds.region import Region


def spec_lower(
    graph: BoundGraph,
    region: Region,
    c: torch.Tensor,
    d: torch.Tensor,
    *,
    intermediate: str | None = None,
    alpha_steps: int = 0,
) -> torch.Tensor:
    """L (B, M) with L_bm <= c_bm . f(x) + d_bm for every x in X_b; c (B, M, K), d (B, M).

    intermediate None: interval propagation (IBP); else CROWN (``crown.margin_bounds``) with that
    intermediate mode ("ibp": CROWN-IBP, "crown", "auto") and alpha_steps optimised slope steps.
    Everything in the graph's dtype."""
    if intermediate is None:
        upper = graph.margin_upper(graph.bounds(region), -c)
    else:
        upper = margin_bounds(graph, region, -c, intermediate=intermediate, alpha_steps=alpha_steps)[0]
    return d - upper


def refuted(lower: torch.Tensor, disjunct: torch.Tensor, count: int) -> torch.Tensor:
    """(B, count) bool: disjunct k is refuted on region b (some row m of k has lower_bm > 0);
    lower (B, M) from ``spec_lower``, disjunct (M,) the index in [0, count) of each row's disjunct."""
    hits = (lower > 0).to(torch.int64)
    out = hits.new_zeros((lower.shape[0], count))
    return out.index_add_(1, disjunct.to(lower.device), hits) > 0
