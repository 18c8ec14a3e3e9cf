"""The ``milp`` certificate (exact, small ReLU nets): the local Lipschitz constant as a mixed-integer program.

For a sample (x_i, y_i) and a radius r the region is the box B = [max(x_i - r, 0), min(x_i + r, 1)], which
is B_inf(x_i, r) cap [0,1]^d and encloses the l2 and l1 balls of radius r (so it is sound for every norm).
The network and its bounds come from the bound engine (``relu_mip.ReluNet``). The program maximises
||grad m_j(x)||_* over x in B:

- forward: z_l = W_l a_{l-1} + b_l, a_l = relu(z_l) with one binary delta per neuron and big-M constants
  from the engine's interval bounds [lo, hi] of z_l over B (a >= z, a >= 0, a <= z - lo (1 - delta),
  a <= hi delta); neurons
  whose interval has one sign get delta fixed by its bounds, which makes the same constraints exact.
- one program per class j != y_i: c = e_j - e_y and v_L = W_L^T c is a constant vector (a joint program
  with class binaries was much slower: its interval bounds mix the classes and unfix most sign binaries).
- backward: w_l = delta_l * v_{l+1} (exact big-M product with the bounds of v_{l+1} from the engine's
  interval backward pass of c),
  v_l = W_l^T w_l; the gradient is g = v_1 = W_1^T D_1 ... W_{L-1}^T D_{L-1} W_L^T c.
- objective: t_k = |g_k| exactly, with a sign binary per input coordinate (fixed when the interval of g_k
  has one sign). linf threat, dual l1: sum_k t_k; l1 threat, dual linf: max_k t_k through a one-hot choice
  of k. l2 threat: ||g||_2 <= sqrt(||g||_1 ||g||_inf),
  so the bound is sqrt(max ||g||_1 * max ||g||_inf) from the two programs: sound, but not exact.

HiGHS (scipy.optimize.milp) solves it; the value used is the solver's dual bound (-mip_dual_bound), an
upper bound of the maximum up to the solver's feasibility tolerances (1e-6), even when the time limit
stops the search early. Each shell's value is also capped by the local engine's bound and by the next
shell's value (a smaller ball has a smaller constant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wdrobust._options import Option, at_least, positive
from wdrobust.certify.base import ShellBound
from wdrobust.certify.bounds.interval import Cot
from wdrobust.certify.local import LocalCertificate
from wdrobust.certify.relu_mip import SOLVER_SLACK, Program, ReluNet, relu_forward

__all__ = ["SOLVER_SLACK", "MILPCertificate", "ReluNet", "lipschitz_on_box"]


@dataclass
class Intervals:
    """Interval bounds over the box: pre-activations z_l, relu indicators delta_l in {0,1} (lo, hi),
    backward vectors v_l (v_L = W_L^T c down to v_1 = g) and products w_l = delta_l v_{l+1}."""

    z: list[tuple[np.ndarray, np.ndarray]]
    delta: list[tuple[np.ndarray, np.ndarray]]
    v: list[tuple[np.ndarray, np.ndarray]]
    w: list[tuple[np.ndarray, np.ndarray]]


def interval_bounds(net: ReluNet, x0: np.ndarray, radius: float, y: int, j: int) -> Intervals:
    """The engine's interval propagation over the box B_inf(x0, radius) cap [0,1]^d and its interval
    backward pass of c = e_j - e_y (``BoundGraph.backward``, cotangents kept at every layer).

    Indices: z[l], delta[l], w[l] (the cotangent of z_l) for hidden layer l = 0..L-2; v[l] is the input
    of layer l's transpose: v[0] = g (the input's cotangent, shape d_0), v[l] = the cotangent of a_{l-1},
    v[L-1] = W_L^T c.
    """
    bounds = net.bounds(x0, radius, "linf")
    z = [(bounds.boxes[n].lo.reshape(-1).numpy(), bounds.boxes[n].hi.reshape(-1).numpy()) for n in net.pre]
    delta = [((z_lo > 0).astype(float), (z_hi > 0).astype(float)) for z_lo, z_hi in z]
    c = torch.zeros((1, 1, net.weights[-1].shape[0]), dtype=torch.float64)
    c[0, 0, j], c[0, 0, y] = 1.0, -1.0
    kept: dict[Any, Cot] = {}
    with torch.no_grad():
        net.graph.backward(bounds, Cot(c), kept=kept)

    def ends(cot: Cot) -> tuple[np.ndarray, np.ndarray]:
        mid = cot.center.reshape(-1).numpy()
        rad = np.zeros_like(mid) if cot.radius is None else cot.radius.reshape(-1).numpy()
        return mid - rad, mid + rad

    v = [ends(kept[n]) for n in (net.graph.input, *net.relus)]
    return Intervals(z, delta, v, [ends(kept[n]) for n in net.pre])


def _gradient_program(net: ReluNet, lo: np.ndarray, hi: np.ndarray, bounds: Intervals) -> tuple[Program, Any]:
    """Forward and backward constraints for one class pair; returns the program and the indices of g."""
    prog = Program()
    _, deltas = relu_forward(prog, net, prog.var(lo, hi), bounds.z)  # the input x, then the hidden layers
    v = prog.var(*bounds.v[-1])  # v_L = W_L^T (e_j - e_y), fixed by its bounds
    for layer in range(len(net.weights) - 2, -1, -1):
        v_lo, v_hi = bounds.v[layer + 1]
        w_lo, w_hi = bounds.w[layer]
        wv = prog.var(w_lo, w_hi)
        delta = deltas[layer]
        inf = np.full(len(wv), np.inf)
        prog.constrain([(1.0, wv), (-1.0, v), (-v_lo, delta)], -inf, -v_lo)  # w <= v - vlo (1 - delta)
        prog.constrain([(1.0, wv), (-1.0, v), (-v_hi, delta)], -v_hi, inf)  # w >= v - vhi (1 - delta)
        prog.constrain([(1.0, wv), (-v_hi, delta)], -inf, np.zeros(len(wv)))  # w <= vhi delta
        prog.constrain([(1.0, wv), (-v_lo, delta)], np.zeros(len(wv)), inf)  # w >= vlo delta
        nv_lo, nv_hi = bounds.v[layer]
        nv = prog.var(nv_lo, nv_hi)
        prog.constrain([(1.0, nv), (-net.weights[layer].T, wv)], np.zeros(len(nv)), np.zeros(len(nv)))
        v = nv
    return prog, v


def _abs_objective(prog: Program, g: np.ndarray, g_lo: np.ndarray, g_hi: np.ndarray, dual: str):
    """Variables t_k = |g_k| (exact with a sign binary sigma_k) and the objective: minimise -sum t (l1)
    or, for linf, -s with s <= t_k + M (1 - pi_k), sum pi = 1 (one-hot choice of the coordinate)."""
    big = np.maximum(np.abs(g_lo), np.abs(g_hi))
    d = len(g)
    t = prog.var(np.zeros(d), big)
    sigma = prog.var((g_lo >= 0).astype(float), (g_hi > 0).astype(float), integer=True)  # sigma = 1: g >= 0
    m_neg, m_pos = np.clip(-2 * g_lo, 0, None), np.clip(2 * g_hi, 0, None)
    inf = np.full(d, np.inf)
    prog.constrain([(1.0, t), (-1.0, g), (m_neg, sigma)], -inf, m_neg)  # t <= g + M- (1 - sigma)
    prog.constrain([(1.0, t), (1.0, g), (-m_pos, sigma)], -inf, np.zeros(d))  # t <= -g + M+ sigma
    if dual == "l1":
        return t, -np.ones(d)
    top = float(big.max())
    s = prog.var(np.zeros(1), np.full(1, top))
    pick = prog.var(np.zeros(d), np.ones(d), integer=True)
    prog.constrain([(np.ones((1, d)), pick)], np.ones(1), np.ones(1))
    prog.constrain([(1.0, np.full(d, s[0])), (-1.0, t), (top, pick)], -inf, np.full(d, top))
    return s, -np.ones(1)


@dataclass
class Solve:
    """Bound of sup_box ||grad m_j(x)||_dual and whether HiGHS proved it optimal."""

    value: float
    optimal: bool


def max_gradient_norm(
    net: ReluNet, x0: np.ndarray, radius: float, y: int, j: int, dual: str, time_limit: float
) -> Solve:
    """Bound of sup ||grad (z_j - z_y)||_dual over the box B_inf(x0, radius) cap [0,1]^d for dual in
    {l1, linf}: the solver's dual bound plus SOLVER_SLACK, or the interval bound ||max(|g_lo|, |g_hi|)||_dual
    when the solver returns none."""
    bounds = interval_bounds(net, x0, radius, y, j)
    lo, hi = np.clip(x0 - radius, 0, 1), np.clip(x0 + radius, 0, 1)
    g_lo, g_hi = bounds.v[0]
    big = np.maximum(np.abs(g_lo), np.abs(g_hi))
    interval = float(big.sum() if dual == "l1" else big.max())
    prog, g = _gradient_program(net, lo, hi, bounds)
    idx, coef = _abs_objective(prog, g, g_lo, g_hi, dual)
    res = prog.solve(idx, coef, time_limit)
    dual_bound = getattr(res, "mip_dual_bound", None)
    if dual_bound is None or not math.isfinite(dual_bound):
        return Solve(interval, False)
    value = min(-float(dual_bound) * (1 + SOLVER_SLACK) + SOLVER_SLACK, interval)
    return Solve(max(value, 0.0), res.status == 0)


def lipschitz_on_box(
    net: ReluNet, x0: np.ndarray, radius: float, y: int, norm: str, time_limit: float
) -> tuple[np.ndarray, bool]:
    """Sound bounds L_j >= sup ||grad m_j||_* over the box B_inf(x0, radius) cap [0,1]^d (x0 (d,)) for
    every class j (shape (K,), L_y = 0) under the threat norm, and whether every program was solved to
    optimality.

    linf -> one l1 program per class; l1 -> one linf program; l2 -> sqrt(l1 bound * linf bound).
    """
    duals = {"linf": ["l1"], "l1": ["linf"], "l2": ["l1", "linf"]}[norm]
    k = net.weights[-1].shape[0]
    values, optimal = np.zeros(k), True
    for j in range(k):
        if j == y:
            continue
        solves = [max_gradient_norm(net, x0, radius, y, j, dual, time_limit) for dual in duals]
        values[j] = math.sqrt(math.prod(s.value for s in solves)) if norm == "l2" else solves[0].value
        optimal &= all(s.optimal for s in solves)
    return values, optimal


class MILPCertificate(LocalCertificate):
    """Exact local Lipschitz constants L_ij(r) of small ReLU networks on the inner shells (r <= milp_radius).

    Shells: the given radii (``options_for(norm, eps, d)``: the default grid around eps without the radii
    below eps, and milp_radius = eps). On shells with r <= ``milp_radius`` (default: the smallest shell
    radius) one program per sample
    and class j != y_i (two for l2) gives L_ij(r); every shell also gets the sound local bound of the
    interval engine (certify.local), and the smaller of the two is used. Outer shells (boxes with too
    many unstable neurons for a MILP) therefore carry the local bound. ``time_limit``: seconds per
    program; runs stopped early use the solver's dual bound (still sound) and say so in ``note``.
    """

    name = "milp"
    sound = True
    per_sample_programs = True
    declared = (
        Option("time_limit", float, 10.0, positive(), "seconds per program"),
        Option("milp_radius", float, None, at_least(0), "largest shell radius solved exactly (default: r_1)"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.optimal = True
        self._net: ReluNet | None = None

    @classmethod
    def options_for(cls, norm: str, eps: float, d: int) -> dict[str, Any]:
        """Shell radii default_radii(norm, eps, d) from eps up (all of them when eps = 0), always ending at
        the diameter (the only shell when eps >= diam X), and milp_radius = eps."""
        radii = super().options_for(norm, eps, d)["radii"]
        if eps > 0:
            keep = radii >= eps * (1 - 1e-12)
            keep[-1] = True
            radii = radii[keep]
        return {"radii": radii, "milp_radius": float(eps)}

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        if self._net is None:
            self._net = ReluNet.from_model(self.model, tuple(x.shape[1:]))
        lip_t, knots = self.shell_lipschitz(x, y)
        lip = lip_t.double().cpu().numpy()
        radii = knots[0].double().cpu().numpy()
        flat = x.reshape(x.shape[0], -1).double().cpu().numpy()
        labels = y.cpu().numpy()
        limit = radii[0] if self.milp_radius is None else self.milp_radius
        inner = np.flatnonzero(radii <= limit * (1 + 1e-6))  # knots may be float32-rounded
        # One program per (sample, inner shell, class): separate MILPs, so this loop cannot be vectorised.
        for i, m in np.ndindex(x.shape[0], len(inner)):
            r = float(radii[inner[m]])
            exact, optimal = lipschitz_on_box(
                self._net, flat[i], r, int(labels[i]), self.norm, self.time_limit
            )
            lip[i, :, inner[m]] = np.minimum(lip[i, :, inner[m]], exact)
            self.optimal &= optimal
        lip = np.flip(np.minimum.accumulate(np.flip(lip, axis=2), axis=2), axis=2)
        notes = [] if self.optimal else ["time limit reached: solver dual bounds used (sound, not exact)"]
        if self.norm == "l2":
            notes.append("l2: sqrt(max ||g||_1 * max ||g||_inf) bound (sound, not exact)")
        if len(inner) == 0:
            notes.append("no shell within milp_radius: local bounds only")
        self.note = "; ".join(notes)
        lip_t = torch.as_tensor(lip.copy(), dtype=torch.float64, device=z.device)
        return ShellBound.from_margins(lip_t, knots.to(torch.float64), z.double(), y, self.losses)
