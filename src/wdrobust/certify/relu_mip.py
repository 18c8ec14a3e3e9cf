"""Small ReLU MLPs as mixed-integer programs: dense float64 layers, interval bounds, a sparse MILP
builder solved by HiGHS (scipy.optimize.milp), and the big-M encoding of the forward pass.

Shared by the ``milp`` (exact local Lipschitz constants) and ``exact`` (minimal flip distances, exact
max margins) certificates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from wdrobust.certify.chain import build_chain

#: Relative slack added to the solver's dual bound against its feasibility tolerances.
SOLVER_SLACK = 1e-6

#: Interval (lo, hi) per hidden layer, each of shape (H_l,).
Preactivations = Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass
class ReluNet:
    """Dense affine layers z_l = W_l a_{l-1} + b_l (float64 numpy), ReLU between them, logits last."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    @classmethod
    def from_model(cls, model: nn.Module, input_shape: tuple[int, ...]) -> ReluNet:
        """The layers of a Sequential ReLU network; other activations or big blocks raise ValueError."""
        device = next(model.parameters(), torch.empty(0)).device
        chain = build_chain(model, input_shape, device)
        for act in chain.activations:
            if not isinstance(act, nn.ReLU):
                raise ValueError(f"MILP encodings support ReLU networks only, found {type(act).__name__}")
        if any(b.matrix is None for b in chain.blocks):
            raise ValueError("MILP encodings need dense layers small enough to materialise")
        return cls(
            [b.matrix.cpu().numpy() for b in chain.blocks], [b.offset.cpu().numpy() for b in chain.blocks]
        )

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Forward pass z_L(x) in float64 for inputs x (..., d_0); shape (..., K)."""
        a = x
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            a = np.clip(a @ w.T + b, 0, None)
        return a @ self.weights[-1].T + self.biases[-1]


def affine_interval(w: np.ndarray, lo: np.ndarray, hi: np.ndarray, b: np.ndarray | float = 0.0):
    """Interval of W u + b for u in [lo, hi]: (W+ lo + W- hi + b, W+ hi + W- lo + b)."""
    wp, wn = np.clip(w, 0, None), np.clip(w, None, 0)
    return wp @ lo + wn @ hi + b, wp @ hi + wn @ lo + b


def interval_preactivations(
    net: ReluNet, lo: np.ndarray, hi: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Interval propagation over the box [lo, hi]: bounds (z_lo, z_hi) of every hidden pre-activation
    z_l, l = 0..L-2, with a_l in [relu(z_lo), relu(z_hi)] fed to the next layer."""
    z = []
    a_lo, a_hi = lo, hi
    for w, b in zip(net.weights[:-1], net.biases[:-1], strict=True):
        z_lo, z_hi = affine_interval(w, a_lo, a_hi, b)
        z.append((z_lo, z_hi))
        a_lo, a_hi = np.clip(z_lo, 0, None), np.clip(z_hi, 0, None)
    return z


def relu_relaxation(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear bounds alpha z <= relu(z) <= s z + t for z in [lo, hi], shapes (H,): on unstable neurons
    (lo < 0 < hi) the chord s = hi / (hi - lo), t = -lo s and CROWN's adaptive lower slope
    alpha = 1{hi > -lo}; stable neurons are exact (s = alpha = 1{lo >= 0}, t = 0)."""
    unstable = (lo < 0) & (hi > 0)
    active = (lo >= 0).astype(float)
    s = np.where(unstable, hi / np.where(unstable, hi - lo, 1.0), active)
    t = np.where(unstable, -lo * s, 0.0)
    alpha = np.where(unstable, (hi > -lo).astype(float), active)
    return alpha, s, t


def l1_ball_upper(
    rows: np.ndarray, x: np.ndarray, radius: float, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """max of rows @ v over {v in [lo, hi] : ||v - x||_1 <= radius} (x in the box), rows (R, d) -> (R,).

    A fractional knapsack per row: coordinates by |row_k| descending, each moved from x_k to the box end
    in the sign of row_k (room_k) until the budget radius is spent.
    """
    room = np.where(rows > 0, hi - x, x - lo)
    order = np.argsort(-np.abs(rows), axis=1)
    gain, room = np.take_along_axis(np.abs(rows), order, 1), np.take_along_axis(room, order, 1)
    spent = np.clip(radius - (np.cumsum(room, axis=1) - room), 0.0, room)
    return rows @ x + (gain * spent).sum(axis=1)


def linear_upper(
    net: ReluNet,
    rows: np.ndarray,
    offset: np.ndarray,
    k: int,
    preact: Preactivations,
    lo: np.ndarray,
    hi: np.ndarray,
    l1_ball: tuple[np.ndarray, float] | None = None,
) -> np.ndarray:
    """Upper bounds of rows @ a_k + offset over the box [lo, hi] (a_k = relu(z_k), a_{-1} = x) by
    linear bound propagation (CROWN) with the pre-activation bounds preact[0..k]; rows (R, H_k) -> (R,).

    Backward through layer l: lam a_l <= (lam+ s + lam- alpha) z_l + lam+ t (relu_relaxation), then
    z_l = W_l a_{l-1} + b_l; at the input, lam x <= lam+ hi + lam- lo, or with l1_ball = (center, r)
    the exact maximum over the box cap B_1(center, r) (l1_ball_upper).
    """
    lam, off = rows, offset
    for layer in range(k, -1, -1):
        alpha, s, t = relu_relaxation(*preact[layer])
        pos, neg = np.clip(lam, 0, None), np.clip(lam, None, 0)
        lam = pos * s + neg * alpha
        off = off + pos @ t + lam @ net.biases[layer]
        lam = lam @ net.weights[layer]
    if l1_ball is not None:
        return l1_ball_upper(lam, *l1_ball, lo, hi) + off
    return np.clip(lam, 0, None) @ hi + np.clip(lam, None, 0) @ lo + off


def linear_preactivations(
    net: ReluNet, lo: np.ndarray, hi: np.ndarray, l1_ball: tuple[np.ndarray, float] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Bounds of every hidden pre-activation over the box [lo, hi] (cap the l1 ball, if given), layer
    by layer: the tighter of CROWN (linear_upper of +-W_l with the bounds of the layers below) and
    interval propagation."""
    z: list[tuple[np.ndarray, np.ndarray]] = []
    a_lo, a_hi = lo, hi
    for layer, (w, b) in enumerate(zip(net.weights[:-1], net.biases[:-1], strict=True)):
        box_lo, box_hi = affine_interval(w, a_lo, a_hi, b)
        up = linear_upper(net, np.vstack([w, -w]), np.concatenate([b, -b]), layer - 1, z, lo, hi, l1_ball)
        h = len(b)
        z.append((np.maximum(box_lo, -up[h:]), np.minimum(box_hi, up[:h])))
        a_lo, a_hi = np.clip(z[-1][0], 0, None), np.clip(z[-1][1], 0, None)
    return z


class Program:
    """Incremental MILP builder: variables with bounds and integrality, sparse constraint rows."""

    def __init__(self) -> None:
        self.lb: list[np.ndarray] = []
        self.ub: list[np.ndarray] = []
        self.integer: list[np.ndarray] = []
        self.triplets: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.row_lb: list[np.ndarray] = []
        self.row_ub: list[np.ndarray] = []
        self.n = 0
        self.r = 0

    def var(self, lo: np.ndarray, hi: np.ndarray, integer: bool = False) -> np.ndarray:
        """Add len(lo) variables with bounds [lo, hi]; returns their indices."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        self.lb.append(lo)
        self.ub.append(np.maximum(hi, lo))
        self.integer.append(np.full(lo.shape, int(integer)))
        idx = np.arange(self.n, self.n + lo.size)
        self.n += lo.size
        return idx

    def constrain(self, terms: list[tuple[Any, np.ndarray]], lo: Any, hi: Any) -> None:
        """Add R = len(lo) rows lo <= sum_t A_t x[idx_t] <= hi.

        A term (A, idx) is a dense block when A has shape (R, len(idx)); a scalar or an (R,) vector A
        means one coefficient per row on x[idx[k]] (idx of length R).
        """
        lo = np.asarray(lo, float)
        rows = np.arange(self.r, self.r + len(lo))
        for coef, idx in terms:
            coef = np.asarray(coef, float)
            if coef.ndim == 2:
                self.triplets.append((np.repeat(rows, len(idx)), np.tile(idx, len(rows)), coef.ravel()))
            else:
                self.triplets.append((rows, np.asarray(idx), np.broadcast_to(coef, rows.shape)))
        self.row_lb.append(lo)
        self.row_ub.append(np.broadcast_to(np.asarray(hi, float), lo.shape))
        self.r += len(lo)

    def solve(self, indices: np.ndarray, coefficients: np.ndarray, time_limit: float) -> Any:
        """Minimise sum_k coefficients_k x[indices_k]; returns scipy's OptimizeResult."""
        import scipy.sparse as sp  # lazy: scipy.optimize is slow to import and only needed here
        from scipy.optimize import Bounds, LinearConstraint, milp

        c = np.zeros(self.n)
        c[indices] = coefficients
        rows, cols, vals = (np.concatenate(part) for part in zip(*self.triplets, strict=True))
        mat = sp.csr_matrix((vals, (rows, cols)), shape=(self.r, self.n))
        return milp(
            c,
            constraints=LinearConstraint(mat, np.concatenate(self.row_lb), np.concatenate(self.row_ub)),
            integrality=np.concatenate(self.integer),
            bounds=Bounds(np.concatenate(self.lb), np.concatenate(self.ub)),
            options={"time_limit": time_limit, "disp": False},
        )


def relu_forward(
    prog: Program, net: ReluNet, x: np.ndarray, preact: Preactivations
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Encode the hidden layers on the input variables x: z_l = W_l a_{l-1} + b_l and a_l = relu(z_l)
    with a binary delta per neuron and big-M constants from preact[l] = (lo, hi):
    a >= z, a >= 0, a <= z - lo (1 - delta), a <= hi delta. delta is fixed to 1 where lo > 0 and to 0
    where hi <= 0, which makes the same rows exact for stable neurons. Sound (the encoding contains
    every forward pass) when preact bounds z_l over the input variables' domain.

    Returns the indices of the last hidden activation a_{L-1} and of the binaries delta_l per layer.
    """
    a = x
    deltas = []
    for (w, b), (z_lo, z_hi) in zip(zip(net.weights[:-1], net.biases[:-1], strict=True), preact, strict=True):
        z = prog.var(z_lo, z_hi)
        prog.constrain([(1.0, z), (-w, a)], b, b)  # z = W a + b
        act = prog.var(np.clip(z_lo, 0, None), np.clip(z_hi, 0, None))
        delta = prog.var((z_lo > 0).astype(float), (z_hi > 0).astype(float), integer=True)
        inf = np.full(len(z), np.inf)
        prog.constrain([(1.0, act), (-1.0, z)], np.zeros(len(z)), inf)  # a >= z
        prog.constrain([(1.0, act), (-1.0, z), (-z_lo, delta)], -inf, -z_lo)  # a <= z - lo (1 - delta)
        prog.constrain([(1.0, act), (-z_hi, delta)], -inf, np.zeros(len(z)))  # a <= hi delta
        a = act
        deltas.append(delta)
    return a, deltas
