"""Machinery shared by every attack: pass counting, candidate recording, projection and step directions.

An attack works on one batch at a time through a :class:`Batch`. Every model evaluation goes through
``Batch.evaluate`` (forward) or ``Batch.gradient`` (forward + backward); both count passes per sample and
record the evaluated points as candidates, so every iterate of every attack is a candidate point for the
primal solver (DESIGN.md section 2) at no extra model call.

Rows: an attack may evaluate any multiset of the batch's samples, given by ``rows`` (m,) indices into the
batch (a subset of still-active samples, or the batch repeated k times for k targets). The j-th occurrence
of sample i in ``rows`` becomes a new candidate column of sample i.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from wdrobust.losses import all_losses, loss_fn
from wdrobust.threat import ThreatModel, steepest

#: objective(z (m, K), rows (m,)) -> (m,) values to ascend.
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Passes:
    """Totals of per-sample forward and backward passes (a batch of m samples counts m)."""

    forward: int = 0
    backward: int = 0


def safe_radius(radius: torch.Tensor) -> torch.Tensor:
    """radius (1 - 1e-5) - 1e-7, clamped at 0: a margin so float32 rounding of x0 + delta never lands
    outside the ball when the distance is recomputed from the stored points."""
    return (radius * (1.0 - 1e-5) - 1e-7).clamp(min=0.0)


def feasible(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """g zeroed where ascent leaves the box: g_k > 0 at x_k >= 1 or g_k < 0 at x_k <= 0."""
    blocked = ((g > 0) & (x >= 1.0)) | ((g < 0) & (x <= 0.0))
    return g.masked_fill(blocked, 0.0)


def steepest_step(g: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    """Dual-norm maximiser u* = argmax_{||u|| <= 1} <g~, u> of the box-feasible gradient g~ (``feasible``).

    linf: sign(g); l2: g~ / ||g~||_2; l1: signed one-hot at argmax |g~_k|. Shapes (m, *S) -> (m, *S).
    """
    return steepest(g if norm == "linf" else feasible(g, x), norm)


def sparse_l1_step(g: torch.Tensor, x: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Sparse l1 ascent direction (SLIDE-style): u = sign(g~) on the top-k coordinates by |g~|, scaled so
    ||u||_1 = 1, with k = max(1, ceil(sparsity * d)) and g~ the box-feasible gradient. (m, *S) -> (m, *S)."""
    flat = feasible(g, x).reshape(g.shape[0], -1)
    k = max(1, math.ceil(sparsity * flat.shape[1]))
    top = flat.abs().topk(k, dim=1)
    u = torch.zeros_like(flat)
    u.scatter_(1, top.indices, torch.sign(flat.gather(1, top.indices)))
    count = u.abs().sum(dim=1, keepdim=True).clamp(min=1.0)
    return (u / count).reshape(g.shape)


def direction(g: torch.Tensor, x: torch.Tensor, norm: str, sparsity: float | None = None) -> torch.Tensor:
    """Ascent direction of unit norm: the dual-norm maximiser, or the sparse top-k step for l1 when
    ``sparsity`` is given (PGD, APGD)."""
    if norm == "l1" and sparsity is not None:
        return sparse_l1_step(g, x, sparsity)
    return steepest_step(g, x, norm)


def loss_objective(name: str, y: torch.Tensor) -> Objective:
    """Objective l(z, y_rows) for a loss name (ce, margin, dlr)."""
    return lambda z, rows: loss_fn(name, z, y[rows])


def target_margin(y: torch.Tensor, target: torch.Tensor) -> Objective:
    """Objective m_t(x) = z_t - z_y with a target class t_i per batch sample (target shape (n,))."""

    def objective(z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return z.gather(1, target[rows, None]).squeeze(1) - z.gather(1, y[rows, None]).squeeze(1)

    return objective


def occurrence(rows: torch.Tensor) -> torch.Tensor:
    """For rows (m,), the number of earlier entries equal to rows[i] (0 for the first occurrence)."""
    order = torch.argsort(rows, stable=True)
    ranked = rows[order]
    first = torch.searchsorted(ranked, ranked)
    rank = torch.empty_like(rows)
    rank[order] = torch.arange(rows.shape[0], device=rows.device) - first
    return rank


@dataclass
class Recorder:
    """Candidate points of one batch: distances t (n, M), gains per loss (n, M), closest flip (n,).

    Built from the clean logits z0 (n, K); ``add`` appends the candidates x (m, *S) with logits z of
    the samples ``rows``: t = ||x - x0_row|| (see ``distance``), gain = l(z) - l(z0).
    """

    x0: torch.Tensor
    y: torch.Tensor
    z0: torch.Tensor
    norm: str
    losses: tuple[str, ...]
    keep_points: bool = False
    clean: dict[str, torch.Tensor] = field(init=False)
    flip: torch.Tensor = field(init=False)
    t: list[torch.Tensor] = field(init=False, default_factory=list)
    gains: dict[str, list[torch.Tensor]] = field(init=False)
    points: list[torch.Tensor] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._origin: tuple[torch.Tensor | None, torch.Tensor] = (None, self.x0)
        self._scratch = torch.empty_like(self.x0)
        self.clean = {k: v.double() for k, v in all_losses(self.z0, self.y, self.losses).items()}
        self.losses = tuple(self.clean)
        self.gains = {name: [] for name in self.losses}
        wrong = self.z0.argmax(dim=1) != self.y
        self.flip = torch.where(wrong, 0.0, math.inf).to(torch.float64)

    def origin(self, rows: torch.Tensor | slice) -> torch.Tensor:
        """x0_rows (m, *S); the gather for a rows tensor is cached for the last one seen (by identity), as
        an attack evaluates the same rows at every step."""
        if isinstance(rows, slice):
            return self.x0[rows]
        if self._origin[0] is not rows:
            self._origin = (rows, self.x0[rows])
        return self._origin[1]

    def distance(self, x: torch.Tensor, sel: torch.Tensor | slice) -> torch.Tensor:
        """||x - x0_sel|| (m,) in float64, never below the exact distance of the stored float32 points.

        The differences are taken in float32, each within a relative 2^-24 of the exact one (round to
        nearest), and reduced per sample: linf exactly (|.| and max do not round), l2/l1 in float64
        (relative error below d 2^-53). The result is rounded up by the factor 1 + 1e-6, which covers
        both for any d < 2^30 and stays below the 1 - 1e-5 shrink of ``safe_radius``.
        """
        if self._scratch.shape != x.shape:  # reused across steps: no new (m, *S) tensor per call
            self._scratch = torch.empty_like(x)
        diff = torch.sub(x, self.origin(sel), out=self._scratch).reshape(x.shape[0], -1)
        if self.norm == "linf":
            reduced = diff.abs_().amax(dim=1).double()  # in place: an out-of-place abs costs 2x here
        else:
            order = 2.0 if self.norm == "l2" else 1.0
            reduced = torch.linalg.vector_norm(diff, ord=order, dim=1, dtype=torch.float64)
        return reduced * (1 + 1e-6)

    def add(self, x: torch.Tensor, z: torch.Tensor, rows: torch.Tensor, full: bool = False) -> None:
        """Record the m candidates x (m, *S) with logits z (m, K) of batch samples rows (m,); ``full``
        says that rows is exactly 0..n-1 (one column, no index bookkeeping)."""
        n = self.x0.shape[0]
        x, z = x.detach(), z.detach()
        if full:
            sel, col, width = slice(None), 0, 1
        else:
            sel, col = rows, occurrence(rows)
            width = int(col.max()) + 1 if rows.numel() else 0
        dist = self.distance(x, sel)
        t = torch.full((n, width), math.inf, dtype=torch.float64, device=x.device)
        t[sel, col] = dist
        self.t.append(t)
        values = all_losses(z, self.y[sel], self.losses)
        for name in self.losses:
            g = torch.zeros((n, width), dtype=torch.float64, device=x.device)
            g[sel, col] = values[name].double() - self.clean[name][sel]
            self.gains[name].append(g)
        wrong = z.argmax(dim=1) != self.y[sel]
        flipped = torch.full((n,), math.inf, dtype=torch.float64, device=x.device)
        flipped.scatter_reduce_(0, rows[wrong], dist[wrong], reduce="amin")
        self.flip = torch.minimum(self.flip, flipped)
        if self.keep_points:
            p = self.x0[:, None].repeat(1, width, *([1] * (x.dim() - 1)))
            p[sel, col] = x
            self.points.append(p)


class Batch:
    """One batch under attack: clean inputs x0 (n, *S), labels y (n,), the model, the pass counter and
    the candidate recorder. ``n_total`` is the size N of the whole run (used by radius schedules)."""

    def __init__(
        self,
        model: nn.Module,
        threat: ThreatModel,
        x0: torch.Tensor,
        y: torch.Tensor,
        *,
        losses: tuple[str, ...],
        passes: Passes,
        generator: torch.Generator,
        n_total: int,
        keep_points: bool = False,
    ) -> None:
        self.model, self.threat, self.x0, self.y = model, threat, x0, y
        self.passes, self.generator, self.n_total = passes, generator, n_total
        self.all = torch.arange(x0.shape[0], device=x0.device)
        with torch.no_grad():
            z0 = model(x0)
        passes.forward += x0.shape[0]
        if z0.dim() != 2:
            raise ValueError(f"the model must return logits of shape (N, K), got {tuple(z0.shape)}")
        if int(y.max()) >= z0.shape[1]:
            raise ValueError(f"label {int(y.max())} out of range for a model with {z0.shape[1]} classes")
        self.z0 = z0.detach()
        self.recorder = Recorder(x0, y, self.z0, threat.norm, losses, keep_points)
        self._bounds: dict[tuple[float, bool], tuple[torch.Tensor, torch.Tensor]] = {}
        self._bounds_rows: torch.Tensor | None = None

    @property
    def n(self) -> int:
        """Batch size n."""
        return self.x0.shape[0]

    @property
    def classes(self) -> int:
        """Number of classes K."""
        return self.z0.shape[1]

    def evaluate(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of x (m, *S) for samples rows (default: the whole batch); one counted forward, recorded."""
        rows = self.all if rows is None else rows
        with torch.no_grad():
            z = self.model(x)
        self.passes.forward += x.shape[0]
        self.recorder.add(x, z, rows, full=rows is self.all)
        return z

    def gradient(
        self, x: torch.Tensor, objective: Objective, rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z, v, g): logits, objective values v = objective(z, rows) (m,) and g = grad_x v_i (m, *S).

        One counted forward and backward over the m rows; x is recorded as a candidate.
        """
        rows = self.all if rows is None else rows
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            z = self.model(x)
            v = objective(z, rows)
            (g,) = torch.autograd.grad(v.sum(), x)
        self.passes.forward += x.shape[0]
        self.passes.backward += x.shape[0]
        self.recorder.add(x, z, rows, full=rows is self.all)
        return z.detach(), v.detach(), g

    def project(
        self, x: torch.Tensor, rows: torch.Tensor, radius: torch.Tensor | float, inplace: bool = False
    ) -> torch.Tensor:
        """Projection of x (m, *S) onto B(x0_rows, radius) and the box, radius shrunk by ``safe_radius``.

        For linf with a float radius, one clamp between the cached bounds max(x0_rows - r, 0) and
        min(x0_rows + r, 1) (the same set), written into x itself when ``inplace`` (for a fresh x that
        nothing else holds: it saves allocating and first touching a new (m, *S) tensor).
        """
        if self.threat.norm == "linf" and isinstance(radius, float):
            low, high = self.linf_bounds(rows, radius)
            return torch.clamp(x, min=low, max=high, out=x if inplace else None)
        r = torch.as_tensor(radius, dtype=x.dtype, device=x.device).expand(x.shape[0])
        return self.threat.project(x, self.x0[rows], safe_radius(r))

    def linf_bounds(self, rows: torch.Tensor, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(max(x0_rows - r, 0), min(x0_rows + r, 1)), each (m, *S), with r = safe_radius(radius); cached
        per radius for the whole batch, and for the last other ``rows`` tensor seen (by identity)."""
        key = (radius, rows is self.all)
        if key in self._bounds and (rows is self.all or self._bounds_rows is rows):
            return self._bounds[key]
        r = float(safe_radius(torch.tensor(radius, dtype=torch.float64)))
        x0 = self.x0 if rows is self.all else self.recorder.origin(rows)
        if rows is not self.all:
            self._bounds = {k: v for k, v in self._bounds.items() if k[1]}
            self._bounds_rows = rows
        self._bounds[key] = ((x0 - r).clamp(min=0.0), (x0 + r).clamp(max=1.0))
        return self._bounds[key]

    def random_start(self, rows: torch.Tensor, radius: torch.Tensor | float) -> torch.Tensor:
        """A random point of B(x0_rows, radius) cap box: uniform in the linf cube of the radius, projected."""
        x0 = self.x0[rows]
        r = torch.as_tensor(radius, dtype=x0.dtype, device=x0.device).expand(x0.shape[0])
        u = torch.rand(x0.shape, generator=self.generator, device=x0.device, dtype=x0.dtype)
        delta = (2 * u - 1) * r.reshape(-1, *([1] * (x0.dim() - 1)))
        return self.project(x0 + delta, rows, r, inplace=True)

    def top_targets(self, k: int) -> torch.Tensor:
        """The k non-true classes with the largest clean logits, (n, k), best first."""
        masked = self.z0.scatter(1, self.y[:, None], -math.inf)
        return masked.topk(k, dim=1).indices


def ascend(
    batch: Batch,
    x: torch.Tensor,
    rows: torch.Tensor,
    objective: Objective,
    radius: float | torch.Tensor,
    steps: int,
    step: float,
    sparsity: float | None = None,
    keep: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected steepest ascent x <- P_{B(x0, radius) cap box}(x + step u(grad objective)), ``steps``
    gradient steps plus one forward at the last iterate. Returns the best iterate (m, *S) and the best
    objective value (m,); with keep=False the last iterate instead of the best (every iterate is a
    recorded candidate anyway), which saves a pass over the inputs per step."""
    best_x, best_v = x, torch.full((x.shape[0],), -math.inf, device=x.device)
    for _ in range(steps):
        _, v, g = batch.gradient(x, objective, rows)
        if keep:
            best_x, best_v = keep_best(best_x, best_v, x, v)
        else:
            best_v = torch.maximum(best_v, v)
        u = direction(g, x, batch.threat.norm, sparsity)
        x = batch.project(torch.add(x, u, alpha=step, out=u), rows, radius, inplace=True)
    v = objective(batch.evaluate(x, rows), rows)
    if keep:
        return keep_best(best_x, best_v, x, v)
    return x, torch.maximum(best_v, v)


def keep_best(
    best_x: torch.Tensor, best_v: torch.Tensor, x: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise (x, v) where v > best_v, else (best_x, best_v); (x, v) themselves when every row improved
    (no copy: neither input is modified, so sharing them is safe)."""
    better = v > best_v
    if bool(better.all()):
        return x, v
    flat = torch.where(better[:, None], x.reshape(x.shape[0], -1), best_x.reshape(x.shape[0], -1))
    return flat.reshape(x.shape), torch.where(better, v, best_v)


def improve_(best: torch.Tensor, x: torch.Tensor, better: torch.Tensor) -> torch.Tensor:
    """best[i] <- x[i] in place for the rows i where better (m,) holds; best (m, *S) must own its memory.

    Copies only the improved rows (one pass over the inputs when all improved, none when none did)."""
    idx = better.nonzero().squeeze(1)
    if idx.numel() == better.numel():
        return best.copy_(x)
    if idx.numel():
        best.index_copy_(0, idx, x.index_select(0, idx))
    return best


def move(x: torch.Tensor, eta: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """x + eta_i u (m, *S) with per-sample step sizes eta (m,), in one fused pass (addcmul)."""
    return torch.addcmul(x, eta.reshape(-1, *([1] * (x.dim() - 1))), u)
