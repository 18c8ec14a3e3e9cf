"""Small ReLU MLPs as mixed-integer programs: the network read from the bound engine's traced graph, a
sparse MILP builder solved by HiGHS (scipy.optimize.milp), and the big-M encoding of the forward pass.

Shared by the ``milp`` (exact local Lipschitz constants) and ``exact`` (minimal flip distances, exact
max margins) certificates. The dense layers are the graph's affine segments (``bounds.dense``) between
ReLUs; the big-M constants (pre-activation bounds over a region) and the margin bounds come from the
engine: interval propagation (``BoundGraph.bounds``) or CROWN (``bounds.propagation``), in float64.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from wdrobust.certify.bounds import BoundGraph, Bounds
from wdrobust.certify.bounds.activations import ActivationRule
from wdrobust.certify.bounds.dense import Dense
from wdrobust.certify.bounds.interval import Box
from wdrobust.certify.bounds.lipschitz import region_bounds
from wdrobust.certify.bounds.propagation import Crown
from wdrobust.certify.bounds.region import Region

#: Relative slack added to the solver's dual bound against its feasibility tolerances.
SOLVER_SLACK = 1e-6

#: Interval (lo, hi) per hidden layer, each of shape (H_l,).
Preactivations = Sequence[tuple[np.ndarray, np.ndarray]]


def _describe(graph: BoundGraph, node: fx.Node) -> str:
    return type(graph.gm.get_submodule(node.target)).__name__ if node.op == "call_module" else node.name


@dataclass
class ReluNet:
    """Dense affine layers z_l = W_l a_{l-1} + b_l (float64 numpy), ReLU between them, logits last; with
    the traced float64 graph they come from, its pre-activation nodes ``pre`` (z_l, l = 0..L-2) with
    their value shapes ``shapes``, its ReLU nodes ``relus`` (a_l), and the input shape S."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    graph: BoundGraph
    pre: list[fx.Node]
    shapes: list[tuple[int, ...]]
    relus: list[fx.Node]
    input_shape: tuple[int, ...]

    @classmethod
    def from_model(cls, model: nn.Module, input_shape: tuple[int, ...]) -> ReluNet:
        """The layers of a traceable chain (affine segments and ReLUs) on inputs (n, *input_shape); other
        activations, branches or blocks too large to materialise raise ValueError."""
        graph = BoundGraph(copy.deepcopy(model).double().requires_grad_(False).eval().cpu())
        dense = Dense(graph, tuple(input_shape), torch.float64, torch.device("cpu"))
        starts: dict[fx.Node, list[Any]] = {}
        for seg in dense.segments.values():
            starts.setdefault(seg.start, []).append(seg)
        net = cls([], [], graph, [], [], [], tuple(input_shape))
        cur = graph.input
        while True:
            segs = starts.get(cur, [])
            if len(segs) != 1 or len([u for u in cur.users if u in graph.interval]) != 1:
                raise ValueError(f"MILP encodings need a chain of affine layers and ReLUs (at {cur.name!r})")
            seg = segs[0]
            m = dense.matrix(seg)
            if m is None:
                raise ValueError("MILP encodings need dense layers small enough to materialise")
            net.weights.append(m.numpy())
            net.biases.append(dense.offset(seg).numpy())
            if seg.end is graph.output:
                return net
            users = [u for u in seg.end.users if u in graph.interval]
            rule = dense.bounds.rules.get(users[0]) if len(users) == 1 else None
            if not isinstance(rule, ActivationRule) or rule.activation.relu_slope != 0.0:
                what = _describe(graph, users[0]) if users else "no activation"
                raise ValueError(f"MILP encodings support ReLU networks only, found {what}")
            net.pre.append(seg.end)
            net.shapes.append(dense.shape(seg.end))
            net.relus.append(users[0])
            cur = users[0]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Forward pass z_L(x) in float64 for inputs x (..., d_0); shape (..., K)."""
        a = x
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            a = np.clip(a @ w.T + b, 0, None)
        return a @ self.weights[-1].T + self.biases[-1]

    def region(self, x0: np.ndarray, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The engine's form of B(x0, radius) cap [0,1]^d: (x (1, *S), r (1,)) in float64."""
        x = torch.as_tensor(x0, dtype=torch.float64).reshape(1, *self.input_shape)
        return x, torch.tensor([float(radius)], dtype=torch.float64)

    def bounds(self, x0: np.ndarray, radius: float, norm: str, intermediate: str | None = None) -> Bounds:
        """The engine's boxes over B(x0, radius) cap [0,1]^d (x0 (d,)): interval propagation, or with the
        pre-activations tightened by CROWN first (``bounds.lipschitz.region_bounds``)."""
        x, r = self.region(x0, radius)
        with torch.no_grad():
            return region_bounds(self.graph, x, r, norm, intermediate)

    def preactivations(
        self, x0: np.ndarray, radius: float, norm: str, intermediate: str | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Bounds (lo, hi) (H_l,) of every hidden pre-activation z_l over B(x0, radius) cap [0,1]^d."""
        boxes = self.bounds(x0, radius, norm, intermediate).boxes
        return [(boxes[n].lo.reshape(-1).numpy(), boxes[n].hi.reshape(-1).numpy()) for n in self.pre]

    def margin_upper(
        self, x0: np.ndarray, radius: float, norm: str, preact: Preactivations, y: int, j: int
    ) -> float:
        """Upper bound of m_j = z_j - z_y over B(x0, radius) cap [0,1]^d given sound pre-activation bounds
        preact: the tighter of the interval bound and CROWN (``bounds.propagation``) on those boxes."""
        x, r = self.region(x0, radius)
        known = {
            n: Box(torch.as_tensor(lo).reshape(1, *s), torch.as_tensor(hi).reshape(1, *s))
            for n, s, (lo, hi) in zip(self.pre, self.shapes, preact, strict=True)
        }
        spec = torch.zeros((1, 1, self.weights[-1].shape[0]), dtype=torch.float64)
        spec[0, 0, j], spec[0, 0, y] = 1.0, -1.0
        with torch.no_grad():
            crown = Crown(self.graph, Region.ball(x, r, norm), "ibp", known=known)
            interval = self.graph.margin_upper(crown.bounds, spec)
            return float(torch.minimum(crown.upper(self.graph.output, spec), interval))


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
