"""The ``exact`` certificate (small ReLU MLPs, linf and l1): minimal flip distances and max margins as MILPs.

Minimal flip distance of a correctly classified sample (x_i, y_i), margins m_j = z_j - z_y:

    d_i* = min_{j != y_i} d_ij,   d_ij = min { ||x - x_i|| : x in [0,1]^d, m_j(x) >= 0 }.

One MILP per class j over the search region B(x_i, R) cap [0,1]^d, R an upper bound of d_i* (the best
attack's flip distance, else diam X: linf 1, l1 d): the input x lies in the box
[max(x_i - R, 0), min(x_i + R, 1)], the hidden layers are the big-M ReLU encoding of relu_mip.relu_forward
(pre-activation bounds over the region from a pluggable bound source, ``BoundsFn``; default the bound
engine's CROWN intermediate bounds, ``linear_bounds``), the margin row is
m_j(x) = (W_L[j] - W_L[y]) a_{L-1} + b_L[j] - b_L[y] >= 0 and the objective is t with |x_k - x_ik| <= t
for every k (linf) or t = sum_k u_k, u_k >= |x_k - x_ik| (l1), t <= R. Classes are tried in decreasing
order of z_j(x_i); once a flip at distance U is found, the region shrinks to radius U (fresh bounds,
smaller big-M constants) since farther flips cannot lower the minimum. A class is skipped when the bounds
prove max m_j < 0 on the region; an infeasible program proves d_ij > R. Misclassified samples have d_i* = 0.

Per class, the sound lower bound is the solver's dual bound minus a slack for its tolerances
(SOLVER_SLACK relative + ABSOLUTE_SLACK), capped at the region radius; it stays sound when the time limit
stops the search, and since HiGHS (through scipy) then reports no dual bound unless it found a feasible
point, the radius verified by the bounds alone (bisection) is the fallback. The upper bound is the
distance of the solver's best point (a flip up to HiGHS's feasibility tolerance 1e-6). d_i* is proven
when every program was solved to optimality (HiGHS's default relative gap 1e-4) or proven infeasible.

Max margin at radius r: max { m_j(x) : x in B(x_i, r) cap [0,1]^d } per class, the same encoding with the
objective m_j and t <= r; the solver's dual bound (plus slack, capped by the bounds' margin bound) is
sound, the best point's margin (at least m_j(x_i)) is attained up to the solver's tolerance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from wdrobust._options import Option, positive
from wdrobust.certify.base import CertificateResult, ShellBound
from wdrobust.certify.local import LocalCertificate
from wdrobust.certify.relu_mip import SOLVER_SLACK, Preactivations, Program, ReluNet, relu_forward

#: Absolute slack subtracted from (added to) the solver's dual bounds, on top of SOLVER_SLACK relative.
ABSOLUTE_SLACK = 1e-7

#: Bisection steps of the bound-verified radius used when a flip program stops at its time limit.
VERIFY_STEPS = 12

#: Bound source (net, x_i, R_i, norm) -> (lo, hi) per hidden layer, valid on B(x_i, R_i) cap [0,1]^d.
#: Arrays of shape (H_l,) serve every class; shape (K, H_l) gives bounds per class (row j is used in
#: class j's programs).
BoundsFn = Callable[[ReluNet, np.ndarray, float, str], Preactivations]


def box_bounds(net: ReluNet, x: np.ndarray, radius: float, norm: str) -> Preactivations:
    """The bound engine's interval propagation over B(x, radius) cap [0,1]^d."""
    return net.preactivations(x, radius, norm)


def linear_bounds(net: ReluNet, x: np.ndarray, radius: float, norm: str) -> Preactivations:
    """The default bound source: the bound engine's CROWN bounds of every pre-activation over the region
    (``bounds.propagation`` intermediate mode crown; exact concretisation over the box, cap the l1 ball),
    intersected with interval propagation."""
    return net.preactivations(x, radius, norm, "crown")


def check_norm(norm: str) -> str:
    """The norm if it is linf or l1; l2 (a non-linear ball) and anything else raise ValueError."""
    if norm not in ("linf", "l1"):
        raise ValueError(
            f"exact supports linf and l1 (linear balls), got {norm!r}; for l2 use the sound "
            "`radius` or `local` certificate"
        )
    return norm


def _below(value: float) -> float:
    """A sound lower bound from a solver's dual bound: value - SOLVER_SLACK |value| - ABSOLUTE_SLACK."""
    return value - SOLVER_SLACK * abs(value) - ABSOLUTE_SLACK


@dataclass
class _Region:
    """B(x0, radius) cap [0,1]^d for norm linf or l1; lo, hi (d,): the box B_inf(x0, radius) cap [0,1]^d."""

    x0: np.ndarray
    radius: float
    norm: str

    def __post_init__(self) -> None:
        self.lo, self.hi = np.clip(self.x0 - self.radius, 0, 1), np.clip(self.x0 + self.radius, 0, 1)

    def bounds(self, net: ReluNet, source: BoundsFn) -> Preactivations:
        """Pre-activation bounds over the region from a bound source."""
        return source(net, self.x0, self.radius, self.norm)


def _class_rows(preact: Preactivations, j: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Class j's bounds: row j of per-class (K, H_l) arrays, shared (H_l,) arrays as they are."""
    return [(lo[j] if lo.ndim == 2 else lo, hi[j] if hi.ndim == 2 else hi) for lo, hi in preact]


@dataclass
class _Margin:
    """m_j(x) = c a_{L-1} + offset for one class pair (y, j); c shape (H_{L-1},)."""

    c: np.ndarray
    offset: float
    y: int
    j: int

    @classmethod
    def of(cls, net: ReluNet, y: int, j: int) -> _Margin:
        w, b = net.weights[-1], net.biases[-1]
        return cls(w[j] - w[y], float(b[j] - b[y]), y, j)

    def upper(self, net: ReluNet, preact: Preactivations, region: _Region) -> float:
        """Upper bound of m_j over the region from the hidden-layer bounds: the tighter of the interval
        bound and CROWN on those bounds (``ReluNet.margin_upper``)."""
        return net.margin_upper(region.x0, region.radius, region.norm, preact, self.y, self.j)


def _region_program(
    net: ReluNet, region: _Region, preact: Preactivations
) -> tuple[Program, np.ndarray, np.ndarray]:
    """The region's program with the encoded hidden layers; returns it, the indices of a_{L-1} and of
    the distance t (one variable, ||x - x0|| <= t <= radius)."""
    prog = Program()
    x0 = region.x0
    x = prog.var(region.lo, region.hi)
    a, _ = relu_forward(prog, net, x, preact)
    t = prog.var(np.zeros(1), np.full(1, region.radius))
    d, inf = len(x0), np.full(len(x0), np.inf)
    if region.norm == "linf":
        tt = np.full(d, t[0])
        prog.constrain([(1.0, x), (-1.0, tt)], -inf, x0)  # x_k - t <= x0_k
        prog.constrain([(1.0, x), (1.0, tt)], x0, inf)  # x_k + t >= x0_k
    else:
        u = prog.var(np.zeros(d), np.maximum(region.hi - x0, x0 - region.lo))
        prog.constrain([(1.0, u), (-1.0, x)], -x0, inf)  # u_k >= x_k - x0_k
        prog.constrain([(1.0, u), (1.0, x)], x0, inf)  # u_k >= x0_k - x_k
        prog.constrain([(np.ones((1, d)), u), (-1.0, t)], np.zeros(1), np.zeros(1))  # t = sum_k u_k
    return prog, a, t


@dataclass
class _Outcome:
    """A solve: dual bound of the minimum (-inf if none), best objective (inf if none), status."""

    dual: float
    primal: float
    optimal: bool
    infeasible: bool

    @classmethod
    def of(cls, res: Any) -> _Outcome:
        if res.status == 2:
            return cls(math.inf, math.inf, True, True)
        dual = getattr(res, "mip_dual_bound", None)
        dual = float(dual) if dual is not None and math.isfinite(dual) else -math.inf
        primal = float(res.fun) if res.x is not None else math.inf
        return cls(dual, primal, res.status == 0, False)


def _verified_radius(
    net: ReluNet, x0: np.ndarray, y: int, j: int, top: float, norm: str, bounds: BoundsFn
) -> float:
    """Largest r of a bisection on [0, top] (VERIFY_STEPS halvings) at which the bounds prove m_j < 0 on
    B(x0, r) cap [0,1]^d; 0 when none is proven. The fallback lower bound of d_ij when a program is
    stopped by the time limit, since HiGHS reports no dual bound without a feasible point."""
    margin, lo, hi = _Margin.of(net, y, j), 0.0, top
    for _ in range(VERIFY_STEPS):
        mid = _Region(x0, (lo + hi) / 2, norm)
        proven = margin.upper(net, _class_rows(mid.bounds(net, bounds), j), mid) < 0
        lo, hi = (mid.radius, hi) if proven else (lo, mid.radius)
    return lo


def _flip_sample(
    net: ReluNet, x0: np.ndarray, y: int, radius: float, norm: str, time_limit: float, bounds: BoundsFn
) -> tuple[float, float, bool]:
    """(lower, upper, proven) of d* for one correctly classified sample x0 (d,) and search radius R."""
    z0 = net.logits(x0)
    region, lower, upper, proven = _Region(x0, radius, norm), radius, math.inf, True
    preact = region.bounds(net, bounds)
    for j in (int(k) for k in np.argsort(-z0) if k != y):
        rows, margin, r = _class_rows(preact, j), _Margin.of(net, y, j), region.radius
        if margin.upper(net, rows, region) < 0:
            lower = min(lower, r)
            continue
        prog, a, t = _region_program(net, region, rows)
        prog.constrain([(margin.c[None], a)], [-margin.offset], [np.inf])  # m_j(x) >= 0
        out = _Outcome.of(prog.solve(t, np.ones(1), time_limit))
        proven &= out.optimal
        found = r if out.infeasible else max(_below(out.dual), 0.0)
        if not out.optimal:
            found = max(found, _verified_radius(net, x0, y, j, r, norm, bounds))
        lower = min(lower, r, found)
        if out.primal < r:  # a closer flip: shrink the region, tighten the bounds
            upper, region = out.primal, _Region(x0, out.primal, norm)
            preact = region.bounds(net, bounds)
    return lower, upper, proven


@dataclass
class FlipBrackets:
    """Minimal flip distances d_i* of N samples (numpy, float64 unless stated).

    lower: (N,) sound, lower <= d_i* (the certified radius; R_i when no flip lies within R_i);
    upper: (N,) distance of a flip found by the solver (inf if none); proven: (N,) bool, every class
    program solved to optimality or proven infeasible; seconds: (N,) solver wall time;
    radius: (N,) the search radius R_i. Misclassified samples: lower = upper = 0, proven.
    """

    lower: np.ndarray
    upper: np.ndarray
    proven: np.ndarray
    seconds: np.ndarray
    radius: np.ndarray

    @staticmethod
    def concat(parts: Sequence[FlipBrackets]) -> FlipBrackets:
        """Join the results of consecutive batches."""
        return FlipBrackets(
            *(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(FlipBrackets))
        )

    def summary(self) -> str:
        """One line: proven count, median seconds per sample, the time-limited samples."""
        n, done = len(self.proven), int(self.proven.sum())
        line = f"exact: {done}/{n} flip distances proven, median {np.median(self.seconds):.2g} s/sample"
        if done < n:
            line += "; time limit reached on the others: dual or bound-verified radii used (sound, not exact)"
        return line


def _flip_batch(
    net: ReluNet,
    x: np.ndarray,
    y: np.ndarray,
    correct: np.ndarray,
    norm: str,
    upper: np.ndarray | None,
    time_limit: float,
    bounds: BoundsFn,
) -> FlipBrackets:
    """flip_distances on flat float64 inputs x (n, d), labels y (n,), clean correctness (n,)."""
    n, d = x.shape
    diam = float(d) if norm == "l1" else 1.0
    radius = np.full(n, diam) if upper is None else np.nan_to_num(upper, nan=diam, posinf=diam)
    radius = np.clip(radius, 0.0, diam)
    out = FlipBrackets(np.zeros(n), np.zeros(n), np.ones(n, bool), np.zeros(n), radius)
    for i in np.flatnonzero(correct):
        start = time.perf_counter()
        out.lower[i], out.upper[i], out.proven[i] = _flip_sample(
            net, x[i], int(y[i]), float(radius[i]), norm, time_limit, bounds
        )
        out.seconds[i] = time.perf_counter() - start
    return out


def _prepare(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str
) -> tuple[ReluNet, np.ndarray, np.ndarray, torch.Tensor]:
    """(ReluNet, flat float64 x (N, d), labels (N,), clean logits (N, K) of the torch model)."""
    check_norm(norm)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}")
    net = ReluNet.from_model(model, tuple(x.shape[1:]))
    with torch.no_grad():
        z = model(x)
    flat = x.reshape(x.shape[0], -1).detach().to("cpu", torch.float64).numpy()
    return net, flat, y.cpu().numpy(), z.cpu()


def flip_distances(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    norm: str,
    *,
    upper: np.ndarray | torch.Tensor | None = None,
    time_limit: float = 10.0,
    bounds: BoundsFn | None = None,
) -> FlipBrackets:
    """Minimal flip distances d_i* of a Sequential ReLU MLP (eval mode) at x (N, *S) in [0,1], y (N,).

    norm: linf or l1. upper: (N,) upper bounds of d_i* (e.g. an attack's flip distances; inf/nan: none),
    the search radii R_i, default diam X. time_limit: seconds per program (one per sample and class).
    bounds: pre-activation bound source (default ``linear_bounds``). Correctness is the torch model's.
    """
    net, flat, labels, z = _prepare(model, x, y, norm)
    if upper is not None:
        upper = np.asarray(torch.as_tensor(upper).detach().cpu().double())
        if upper.shape != (flat.shape[0],):
            raise ValueError(f"upper must have shape ({flat.shape[0]},), got {upper.shape}")
    correct = (z.argmax(dim=1) == y.cpu()).numpy()
    return _flip_batch(net, flat, labels, correct, norm, upper, time_limit, bounds or linear_bounds)


@dataclass
class MaxMargins:
    """max { m_j(x) : x in B(x_i, r_m) cap [0,1]^d } for N samples, K classes, M radii (numpy).

    upper: (N, K, M) sound upper bound; lower: (N, K, M) attained (the solver's best point, at least
    m_j(x_i)); proven: (N, K, M) bool, solved to optimality; seconds: (N,). Entries j = y_i are 0, proven.
    """

    upper: np.ndarray
    lower: np.ndarray
    proven: np.ndarray
    seconds: np.ndarray


def max_margins(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    radii: Sequence[float] | np.ndarray,
    norm: str,
    *,
    time_limit: float = 10.0,
    bounds: BoundsFn | None = None,
) -> MaxMargins:
    """Exact max margins of a Sequential ReLU MLP at x (N, *S), y (N,) over the balls of radii (M,) or
    (N, M) (>= 0) in norm linf or l1; one program per sample, class j != y_i and radius."""
    net, flat, labels, _ = _prepare(model, x, y, norm)
    bounds = bounds or linear_bounds
    n, k = flat.shape[0], net.weights[-1].shape[0]
    radii = np.broadcast_to(np.asarray(radii, dtype=np.float64), (n, np.shape(radii)[-1]))
    if (radii < 0).any() or np.isnan(radii).any():
        raise ValueError("radii must be >= 0")
    shape = (n, k, radii.shape[1])
    out = MaxMargins(np.zeros(shape), np.zeros(shape), np.ones(shape, bool), np.zeros(n))
    for i in range(n):
        start = time.perf_counter()
        x0, yi = flat[i], int(labels[i])
        m0 = net.logits(x0) - net.logits(x0)[yi]
        for m, r in enumerate(radii[i]):
            region = _Region(x0, float(r), norm)
            preact = region.bounds(net, bounds)
            for j in (c for c in range(k) if c != yi):
                rows, margin = _class_rows(preact, j), _Margin.of(net, yi, j)
                prog, a, _ = _region_program(net, region, rows)
                res = _Outcome.of(prog.solve(a, -margin.c, time_limit))  # minimise -m_j + offset
                solver = math.inf if res.infeasible else margin.offset - _below(res.dual)
                out.upper[i, j, m] = min(margin.upper(net, rows, region), solver)
                out.lower[i, j, m] = max(m0[j], margin.offset - res.primal)
                out.proven[i, j, m] = res.optimal
        out.seconds[i] = time.perf_counter() - start
    return out


class ExactCertificate(LocalCertificate):
    """Certified radii = sound lower bounds of the minimal flip distances d_i* (zero_one), linf and l1.

    ce / margin get the local engine's shell slopes (certify.local), so the result serves every loss.
    Options: time_limit (seconds per program), bounds (a ``BoundsFn``, default ``linear_bounds``).
    ``run(x, y, upper=...)`` takes optional per-sample upper bounds of d_i* (an attack's flip distances)
    as search radii. After ``run``, ``flips`` holds the FlipBrackets (proven flags, seconds per sample)
    and the result's note summarises them.
    """

    name = "exact"
    sound = True
    per_sample_programs = True
    norms = ("linf", "l1")
    declared = (Option("time_limit", float, 10.0, positive(), "seconds per program"),)

    def __init__(
        self, model: nn.Module, norm: str = "linf", *, bounds: BoundsFn | None = None, **options: Any
    ) -> None:
        super().__init__(model, norm, **options)
        self.bounds = bounds or linear_bounds
        self.flips: FlipBrackets | None = None
        self._parts: list[FlipBrackets] = []
        self._net: ReluNet | None = None

    def run(self, x: torch.Tensor, y: torch.Tensor, **per_sample: Any) -> CertificateResult:
        """Certificate.run; per_sample may hold ``upper`` (N,) (tensor or array), upper bounds of the flip
        distances such as an attack's ``flip_distance``."""
        if per_sample.get("upper") is not None:
            per_sample["upper"] = torch.as_tensor(per_sample["upper"], dtype=torch.float64)
        self._parts = []
        out = super().run(x, y, **per_sample)
        self.flips = FlipBrackets.concat(self._parts) if self._parts else None
        out.note = self.flips.summary() if self.flips else "exact: zero_one not requested, local shells only"
        return out

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        lip, knots = self.shell_lipschitz(x, y)
        bound = ShellBound.from_margins(lip, knots, z, y, self.losses)
        if "zero_one" in self.losses:
            if self._net is None:
                self._net = ReluNet.from_model(self.model, tuple(x.shape[1:]))
            upper = batch.get("upper")
            flips = _flip_batch(
                self._net,
                x.reshape(x.shape[0], -1).to("cpu", torch.float64).numpy(),
                y.cpu().numpy(),
                (z.argmax(dim=1) == y).cpu().numpy(),
                self.norm,
                None if upper is None else upper.to("cpu", torch.float64).numpy(),
                self.time_limit,
                self.bounds,
            )
            self._parts.append(flips)
            bound.certified_radius = torch.as_tensor(flips.lower, device=z.device)
        return bound
