"""Exact bounds of fully decided ReLU domains by linear programming (linf and l1 balls, ReLU MLPs).

On a domain D_b = {x in X : lo_b <= z(x) <= hi_b} (``domains``; X the region, a box cap a ball) where no
neuron is unstable (every hidden neuron has lo >= 0 or hi <= 0), the network is affine: with the activation
pattern a_l = P_l z_l (P_l diagonal 0/1, slopes of the decided ReLUs), z_l(x) = G_l x + g_l, and each
specification row m_j(x) = c_j . x + e_j (its offset included). Plain CROWN bounds m_j over the whole
region (it ignores the constraints lo <= z(x) <= hi on the input); the LP

    max c_j . x + e_j  s.t.  x in the box of X,  lo_b - delta <= G x + g <= hi_b + delta

is exact on a superset of D_b (delta = DELTA (1 + |bound|) widens every finite constraint, so that the
solver's feasibility tolerance cannot cut a point of D_b): its optimum plus SOLVER_SLACK (1 + |opt|) is a
sound upper bound of m_j on D_b, and an infeasible LP proves D_b empty (bound -inf). linf regions are their
box; l1 balls add
u >= |x - x0|, sum u <= r. The LP is the limit beta-CROWN reaches on such a leaf; here HiGHS solves it.
"""

from __future__ import annotations

import numpy as np
import torch

from wdrobust.certify.bounds.region import Region
from wdrobust.certify.relu_mip import SOLVER_SLACK, ReluNet

#: Relative widening of the domain's box constraints against the solver's feasibility tolerance.
DELTA = 1e-6
NORMS = ("linf", "l1")


def affine_pieces(
    net: ReluNet, lo: list[np.ndarray]
) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """([(G_l (n_l, d), g_l (n_l,)) per hidden layer], W (K, d), w (K,)): z_l(x) = G_l x + g_l and the
    logits W x + w on a domain with lower bounds lo (per hidden layer (n_l,), no unstable neuron: lo >= 0
    active, else inactive)."""
    d = net.weights[0].shape[1]
    a, b = np.eye(d), np.zeros(d)  # the layer input as a x + b
    pieces = []
    for w, c, low in zip(net.weights[:-1], net.biases[:-1], lo, strict=True):
        g, h = w @ a, w @ b + c
        pieces.append((g, h))
        on = (low >= 0).astype(np.float64)  # lo >= 0: active (z = a); hi <= 0: inactive (a = 0)
        a, b = on[:, None] * g, on * h
    return pieces, net.weights[-1] @ a, net.weights[-1] @ b + net.biases[-1]


def leaf_upper(
    net: ReluNet,
    region: Region,
    lo: list[np.ndarray],
    hi: list[np.ndarray],
    spec: np.ndarray,
    offset: np.ndarray | None = None,
    stop: float = np.inf,
) -> np.ndarray:
    """Sound upper bounds (C,) of spec (C, K) . f(x) + offset (C,) (default 0) over a fully decided domain
    (module docstring);
    region: one row, its box [a, b] and ball B(x0, r) (linf or l1; the box alone for linf); lo, hi per
    hidden layer (n_l,); -inf everywhere when the domain is empty. Rows are
    solved in order; once a bound reaches stop, the later rows are left at inf (no bound)."""
    from scipy.optimize import linprog  # slow import (and no CLI start-up cost): only when a leaf is solved

    pieces, w, v = affine_pieces(net, lo)
    x0, r, norm = region.x0.reshape(-1).cpu().numpy(), float(region.r[0]), region.norm
    d = x0.size
    rows, rhs = [], []
    for (g, h), low, up in zip(pieces, lo, hi, strict=True):
        fin_up, fin_lo = np.isfinite(up), np.isfinite(low)
        rows += [g[fin_up], -g[fin_lo]]
        rhs += [
            up[fin_up] - h[fin_up] + DELTA * (1 + np.abs(up[fin_up])),
            h[fin_lo] - low[fin_lo] + DELTA * (1 + np.abs(low[fin_lo])),
        ]
    a_ub, b_ub = np.concatenate(rows), np.concatenate(rhs)
    box = list(zip(*(t.reshape(-1).cpu().numpy() for t in (region.lo, region.hi)), strict=True))
    if norm == "l1":  # variables (x, u): x - u <= x0, -x - u <= -x0, sum u <= r
        eye = np.eye(d)
        a_ub = np.block(
            [
                [a_ub, np.zeros((a_ub.shape[0], d))],
                [eye, -eye],
                [-eye, -eye],
                [np.zeros((1, d)), np.ones((1, d))],
            ]
        )
        b_ub = np.concatenate([b_ub, x0, -x0, [r]])
        box += [(0.0, r)] * d
    out = np.full(spec.shape[0], np.inf)
    for j, row in enumerate(spec):
        c = row @ w
        obj = np.concatenate([-c, np.zeros(len(box) - d)])
        res = linprog(obj, A_ub=a_ub, b_ub=b_ub, bounds=box, method="highs")
        if res.status == 2:  # infeasible: the domain is empty
            return np.full(spec.shape[0], -np.inf)
        if res.status != 0:
            break
        best = -res.fun + float(row @ v) + (0.0 if offset is None else float(offset[j]))
        out[j] = best + SOLVER_SLACK * (1 + abs(best))
        if out[j] >= stop:
            break
    return out


def close_leaves(
    net: ReluNet,
    region: Region,
    lo: list[torch.Tensor],
    hi: list[torch.Tensor],
    spec: torch.Tensor,
    offset: torch.Tensor,
    upper: torch.Tensor,
    open_rows: torch.Tensor,
    stop: float,
) -> torch.Tensor:
    """Upper bounds (D, C) of the open rows of D fully decided domains (lo, hi per node (D, n_l); rows
    spec (C, K) . f + offset (C,); upper (D, C) their current bounds; open_rows (D, C) bool): ``leaf_upper``
    per domain, the open rows worst first, stopping at the first bound >= stop (the domain stays open); rows
    not solved get inf (no bound), every row -inf when the domain is empty."""
    out = torch.full(open_rows.shape, torch.inf, dtype=torch.float64)
    s, off = spec.cpu().numpy(), offset.cpu().numpy()
    for b in range(open_rows.shape[0]):
        order = torch.argsort(upper[b].cpu(), descending=True)
        rows = order[open_rows[b].cpu()[order]].numpy()
        bound = leaf_upper(
            net,
            region,
            [t[b].cpu().numpy() for t in lo],
            [t[b].cpu().numpy() for t in hi],
            s[rows],
            off[rows],
            stop,
        )
        if np.isneginf(bound).all():  # empty domain
            out[b] = -torch.inf
        else:
            out[b, torch.as_tensor(rows)] = torch.as_tensor(bound)
    return out.to(upper.device)
