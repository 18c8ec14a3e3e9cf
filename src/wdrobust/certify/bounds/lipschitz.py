"""Sound per-class margin bounds over balls: Lipschitz constants, margin upper bounds, stable radii.

Notation (docs/notation.md#shells): m_j(x) = z_j(x) - z_y(x); the region of sample i at radius r is
B(x_i, r) cap [0, 1]^d. Rows of a batch are (sample, radius) pairs; the K - 1 classes j != y_i form the
class axis of the interval backward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from wdrobust._device import resolve_device
from wdrobust.certify.bounds.graph import BoundGraph, Bounds
from wdrobust.certify.bounds.interval import Cot
from wdrobust.certify.bounds.region import Region
from wdrobust.threat import ThreatModel, dual_of, lp_norm

#: Default budget of cotangent entries per chunk (rows x classes x widest value) on accelerators.
CHUNK_ENTRIES = 1 << 24
#: The budget on CPU: chunks whose cotangents stay in cache run faster than larger ones (measured with
#: benchmarks/bench_certify_local.py: 2^21 entries, ~8 MB per float32 tensor, beat 2^24 by ~25%).
CPU_CHUNK_ENTRIES = 1 << 21


def other_classes(y: torch.Tensor, k: int) -> torch.Tensor:
    """Indices j != y_i in increasing order, shape (B,) -> (B, K - 1)."""
    grid = torch.arange(k, device=y.device).expand(y.shape[0], k)
    return grid[grid != y[:, None]].reshape(y.shape[0], k - 1)


def margin_cotangents(y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(classes (B, K-1), c (B, K-1, K)) with c_bj = e_j - e_{y_b}: the margin directions."""
    cls = other_classes(y, k)
    c = F.one_hot(cls, k).to(torch.float32) - F.one_hot(y, k).to(torch.float32)[:, None, :]
    return cls, c


def _scatter(values: torch.Tensor, cls: torch.Tensor, k: int) -> torch.Tensor:
    """(B, K-1) values at classes cls -> (B, K) with 0 at the label."""
    out = values.new_zeros((values.shape[0], k))
    return out.scatter(1, cls, values)


def region_bounds(
    graph: BoundGraph, x0: torch.Tensor, r: torch.Tensor, norm: str, intermediate: str | None = None
) -> Bounds:
    """The boxes of every value over the regions: interval propagation (intermediate None), or with the
    inputs of the nonlinearities tightened by linear bound propagation (``bounds.propagation`` with that
    intermediate mode) and the interval pass rerun on them."""
    if intermediate is None:
        return graph.bounds(Region.ball(x0, r, norm))
    from wdrobust.certify.bounds.propagation import Crown  # the linear engine builds on this module's graph

    region = Region.ball(x0, r, norm)
    return graph.bounds(region, known=Crown(graph, region, intermediate).bounds.boxes)


def lipschitz_rows(
    graph: BoundGraph,
    x0: torch.Tensor,
    r: torch.Tensor,
    y: torch.Tensor,
    norm: str,
    intermediate: str | None = None,
) -> torch.Tensor:
    """L_bj >= sup over B(x0_b, r_b) cap [0,1]^d of ||grad m_j||_*, shape (B, K); entry y_b is 0.

    Interval propagation (tightened as in ``region_bounds``) gives derivative intervals of every
    nonlinearity; the interval backward pass of c = e_j - e_y gives |grad m_j(x)| <= G_bj coordinatewise
    on the region, and L_bj = ||G_bj||_*.
    """
    bounds = region_bounds(graph, x0, r, norm, intermediate)
    k = bounds.boxes[graph.output].lo.shape[1]
    cls, c = margin_cotangents(y, k)
    g = graph.backward(bounds, Cot(c.to(x0.dtype))).magnitude()  # (B, K-1, *S)
    lip = lp_norm(g, dual_of(norm), batch_dims=2)
    return _scatter(lip, cls, k)


def margin_upper_rows(
    graph: BoundGraph, x0: torch.Tensor, r: torch.Tensor, y: torch.Tensor, norm: str
) -> torch.Tensor:
    """Upper bounds of m_j over B(x0_b, r_b) cap [0,1]^d by interval propagation, (B, K); entry y_b is 0."""
    bounds = graph.bounds(Region.ball(x0, r, norm))
    k = bounds.boxes[graph.output].lo.shape[1]
    cls, c = margin_cotangents(y, k)
    return _scatter(graph.margin_upper(bounds, c.to(x0.dtype)), cls, k)


def stable_rows(graph: BoundGraph, x0: torch.Tensor, r: torch.Tensor, norm: str) -> torch.Tensor:
    """(B,) bool: every nonlinearity has one derivative value on B(x0_b, r_b) cap [0,1]^d."""
    return graph.bounds(Region.ball(x0, r, norm)).stable()


def chunk_rows(graph: BoundGraph, x: torch.Tensor, classes: int) -> int:
    """Rows per chunk so that rows x classes x (widest value) stays within the budget of x's device
    (CPU_CHUNK_ENTRIES on CPU, CHUNK_ENTRIES elsewhere)."""
    env = graph.evaluate(x[:1])
    widest = max(v.numel() for n, v in env.items() if n in graph.interval and isinstance(v, torch.Tensor))
    budget = CPU_CHUNK_ENTRIES if x.device.type == "cpu" else CHUNK_ENTRIES
    return max(1, budget // (max(classes, 1) * widest))


def _prepare(
    model: nn.Module | BoundGraph, x: torch.Tensor, device: str | torch.device | None
) -> tuple[BoundGraph, torch.Tensor, torch.device]:
    dev = resolve_device(device)
    if isinstance(model, BoundGraph):
        graph = model
        graph.gm.to(dev)
    else:
        graph = BoundGraph(model.to(dev))
    return graph, x.to(dev), dev


def margin_lipschitz(
    model: nn.Module | BoundGraph,
    x: torch.Tensor,
    y: torch.Tensor,
    radii: Sequence[float] | torch.Tensor,
    norm: str,
    *,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    intermediate: str | None = None,
) -> torch.Tensor:
    """L_ij(r_m) >= sup over B(x_i, r_m) cap [0,1]^d of ||grad m_j||_*, shape (N, K, M); L_i,y_i,m = 0.

    x: (N, *S) in [0, 1]; y: (N,); radii: (M,) shared or (N, M) per sample, all > 0. A radius of at
    least (1 - 1e-6) diam [0,1]^d is bounded over the whole box (a superset), so those columns are
    computed once per label (K rows) instead of once per sample. batch_size: rows per chunk (default
    from the widest value of the graph). The model must be in eval mode (BatchNorm, Dropout).
    intermediate: None (interval boxes) or a ``bounds.propagation`` mode for the boxes of the ball columns
    (``region_bounds``); the whole-box columns always use interval boxes.
    """
    graph, x, dev = _prepare(model, x, device)
    y = y.to(dev, torch.long)
    n = x.shape[0]
    r = torch.as_tensor(radii, dtype=x.dtype, device=dev)
    r = r.expand(n, -1) if r.dim() == 1 else r
    if r.dim() != 2 or r.shape[0] != n:
        raise ValueError(f"radii must have shape (M,) or ({n}, M), got {tuple(r.shape)}")
    if torch.isnan(r).any() or (r <= 0).any():
        raise ValueError("radii must be positive numbers")
    diam = ThreatModel(norm).diameter(math.prod(x.shape[1:]))
    # columns whose regions are (up to float rounding of the radius) the whole box: bounding the whole
    # box is sound for any smaller region
    whole = (r >= diam * (1 - 1e-6)).all(dim=0)
    with torch.no_grad():
        k = graph.evaluate(x[:1])[graph.output].shape[1]
        out = x.new_zeros((n, k, r.shape[1]))
        if whole.any():
            labels = torch.arange(k, device=dev)
            centre = torch.full((k, *x.shape[1:]), 0.5, dtype=x.dtype, device=dev)
            table = lipschitz_rows(
                graph, centre, torch.full((k,), diam, dtype=x.dtype, device=dev), labels, norm
            )
            out[:, :, whole] = table[y][:, :, None]
        cols = (~whole).nonzero().flatten()
        if cols.numel():
            rows_x = x.repeat_interleave(cols.numel(), dim=0)
            rows_r = r[:, cols].reshape(-1)
            rows_y = y.repeat_interleave(cols.numel())
            step = batch_size or chunk_rows(graph, x, k - 1)
            parts = [
                lipschitz_rows(
                    graph,
                    rows_x[s : s + step],
                    rows_r[s : s + step],
                    rows_y[s : s + step],
                    norm,
                    intermediate,
                )
                for s in range(0, rows_x.shape[0], step)
            ]
            out[:, :, cols] = torch.cat(parts).reshape(n, cols.numel(), k).permute(0, 2, 1)
    return out
