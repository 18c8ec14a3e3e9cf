"""Machinery shared by every attack: pass counting, candidate recording, projection and step directions.

An attack works on one batch at a time through a :class:`Batch`. Every model evaluation goes through
``Batch.evaluate`` (forward) or ``Batch.gradient`` (forward + backward); both count passes per sample and
record the evaluated points as candidates, so every iterate of every attack is a candidate point for the
primal solver (docs/notation.md#the-primal-form) at no extra model call.

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

from wdrobust.attacks.budget import Budget
from wdrobust.losses import loss_fn
from wdrobust.threat import ThreatModel, steepest

#: objective(z (m, K), rows (m,)) -> (m,) values to ascend.
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: Rounding-up factor of recorded distances (see ``Recorder.distance``).
ROUND_UP = 1 + 1e-6


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


def steepest_step(g: torch.Tensor, x: torch.Tensor, norm: str, inplace: bool = False) -> torch.Tensor:
    """Dual-norm maximiser u* = argmax_{||u|| <= 1} <g~, u> of the box-feasible gradient g~ (``feasible``).

    linf: sign(g); l2: g~ / ||g~||_2; l1: signed one-hot at argmax |g~_k|. Shapes (m, *S) -> (m, *S).
    ``inplace`` (linf): the sign is written into g (for a gradient that nothing else holds).
    """
    if norm == "linf":
        return torch.sign(g, out=g) if inplace else torch.sign(g)
    return steepest(feasible(g, x), norm)


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


def direction(
    g: torch.Tensor, x: torch.Tensor, norm: str, sparsity: float | None = None, inplace: bool = False
) -> torch.Tensor:
    """Ascent direction of unit norm: the dual-norm maximiser, or the sparse top-k step for l1 when
    ``sparsity`` is given (PGD, APGD); ``inplace`` as in ``steepest_step``."""
    if norm == "l1" and sparsity is not None:
        return sparse_l1_step(g, x, sparsity)
    return steepest_step(g, x, norm, inplace)


class LogitObjective:
    """An objective whose gradient in the logits is known in closed form: ``value(z, rows)`` (m,) and
    ``logit_grad(z, rows)`` = d value / d z (m, K). ``Batch.gradient`` back-propagates that (m, K) tensor
    from the logits (one backward, no autograd graph through the loss). Per-rows tensors are cached for
    the last rows tensor seen (by identity), as an attack evaluates the same rows at every step."""

    def __init__(self) -> None:
        self._cache: tuple[torch.Tensor | None, torch.Tensor] = (None, torch.empty(0))

    def rows_tensor(self, rows: torch.Tensor) -> torch.Tensor:
        """The per-rows tensor of ``rows`` (built by ``build``), cached by identity."""
        if self._cache[0] is not rows:
            self._cache = (rows, self.build(rows))
        return self._cache[1]

    def build(self, rows: torch.Tensor) -> torch.Tensor:
        """The per-rows tensor the objective needs (weights or one-hot labels), (m, K)."""
        raise NotImplementedError

    def __call__(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.value(z, rows)

    def value(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Objective values (m,) of logits z (m, K) of samples rows (m,)."""
        raise NotImplementedError

    def logit_grad(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """d value / d z, (m, K)."""
        raise NotImplementedError


class LinearObjective(LogitObjective):
    """v = <w_r, z> with weights w (n, K) per batch sample (rows index them), or, with ``positional``, one
    weight row per evaluated row (rows must then have w's length: e.g. the batch repeated k times)."""

    def __init__(self, weights: torch.Tensor, positional: bool = False) -> None:
        super().__init__()
        self.weights, self.positional = weights, positional

    def build(self, rows: torch.Tensor) -> torch.Tensor:
        if self.positional:
            if rows.shape[0] != self.weights.shape[0]:
                raise ValueError(f"{rows.shape[0]} rows for {self.weights.shape[0]} positional weights")
            return self.weights
        return self.weights[rows]

    def value(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return (z * self.rows_tensor(rows)).sum(dim=1)

    def logit_grad(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.rows_tensor(rows)


class CrossEntropy(LogitObjective):
    """CE(z, y_r) = logsumexp(z) - z_y, whose logit gradient is softmax(z) - e_y."""

    def __init__(self, y: torch.Tensor, classes: int) -> None:
        super().__init__()
        self.y, self.classes = y, classes

    def build(self, rows: torch.Tensor) -> torch.Tensor:
        return one_hot(self.y[rows], self.classes)

    def value(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return loss_fn("ce", z, self.y[rows])

    def logit_grad(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return torch.softmax(z, dim=1).sub_(self.rows_tensor(rows))


def one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """e_labels (m, K) float32 by one scatter (torch's one_hot validates its input with host syncs)."""
    out = torch.zeros(labels.shape[0], classes, device=labels.device)
    return out.scatter_(1, labels[:, None], 1.0)


def margin_weights(y: torch.Tensor, target: torch.Tensor, classes: int) -> torch.Tensor:
    """Weights e_t - e_y (m, K) of the margins m_t = z_t - z_y, for targets t (m,) and labels y (m,)
    (0 where t = y)."""
    weights = one_hot(target, classes)
    return weights.scatter_add_(1, y[:, None], weights.new_full((y.shape[0], 1), -1.0))


def loss_objective(name: str, y: torch.Tensor, classes: int) -> Objective:
    """Objective l(z, y_rows) for a loss name (ce, margin, dlr); ce with its closed-form logit gradient."""
    if name == "ce":
        return CrossEntropy(y, classes)
    return lambda z, rows: loss_fn(name, z, y[rows])


def target_margin(y: torch.Tensor, target: torch.Tensor, classes: int) -> LinearObjective:
    """Objective m_t(x) = z_t - z_y with a target class t_i per batch sample (target shape (n,))."""
    return LinearObjective(margin_weights(y, target, classes))


def occurrence(rows: torch.Tensor) -> torch.Tensor:
    """For rows (m,), the number of earlier entries equal to rows[i] (0 for the first occurrence)."""
    order = torch.argsort(rows, stable=True)
    ranked = rows[order]
    first = torch.searchsorted(ranked, ranked)
    rank = torch.empty_like(rows)
    rank[order] = torch.arange(rows.shape[0], device=rows.device) - first
    return rank


def stacked_losses(zt: torch.Tensor, y: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The losses of ``losses.loss_fn`` for logits laid out class-major, zt (s, K, m) with labels y (m,):
    {name: (s, m)}. Every reduction runs over the middle (class) axis, which is vectorised over the m
    samples (torch's CPU argmax / sort / cross_entropy over a last axis of K ~ 10 are 10-100x slower);
    classes are excluded by adding a (K, m) table of 0 / -inf (``excluded``), not by masking (s, K, m).

    zero_one = 1{argmax z != y} (first index among ties): some z_j >= z_y with j < y, or z_j > z_y with
    j > y, i.e. max_{j != y} z_j > z_y or a tie before y; ce = top + log sum exp(z - top) with top the
    largest logit; dlr's third largest logit counts ties with multiplicity (``top_and_third``).
    """
    k = zt.shape[1]
    col = torch.arange(k, device=zt.device)[:, None]
    zy = zt.gather(1, y[None, None].expand(zt.shape[0], 1, -1)).squeeze(1)  # (s, m)
    other = (zt + excluded(col == y[None])).amax(dim=1)  # max_{j != y} z_j
    first, third = top_and_third(zt) if "dlr" in names and k >= 3 else (None, None)
    if "ce" in names:
        top = zt.amax(dim=1) if first is None else first
        lse = (zt - top[:, None]).exp_().sum(dim=1).log_().add_(top)
    out: dict[str, torch.Tensor] = {}
    for name in names:
        if name == "ce":
            out[name] = lse - zy
        elif name == "margin":
            out[name] = other - zy
        elif name == "zero_one":
            before = (zt + excluded(col >= y[None])).amax(dim=1) >= zy  # a tie (or more) before y
            out[name] = ((other > zy) | before).to(zt.dtype)
        elif name == "dlr" and k >= 3:
            out[name] = -(zy - other) / (first - third + 1e-12)
    return out


def excluded(mask: torch.Tensor) -> torch.Tensor:
    """-inf where mask (K, m) holds, else 0: added to logits (s, K, m) it removes those classes from a max
    (z + 0 = z exactly; a broadcast add is ~10x faster than a broadcast masked_fill on CPU)."""
    return torch.zeros(mask.shape, device=mask.device).masked_fill_(mask, -math.inf)


#: Up to this many classes ``top_and_third`` runs an insertion over the class slices, above it topk.
INSERTION_CLASSES = 32


def top_and_third(zt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The largest and the third largest entries along axis 1 of zt (s, K, m), counted with multiplicity
    (K >= 3): two (s, m) tensors.

    For K <= INSERTION_CLASSES a running top three (a >= b >= c) takes each class slice v in turn:
    a, b, c <- max(a, v), max(b, min(a, v)), max(c, min(b, min(a, v))), five (s, m) operations per
    class (a mask over (s, K, m) or topk over the middle axis costs more on CPU); else topk."""
    if zt.shape[1] > INSERTION_CLASSES:
        values = zt.topk(3, dim=1).values
        return values[:, 0], values[:, 2]
    a, b, c = zt[:, 0], torch.full_like(zt[:, 0], -math.inf), torch.full_like(zt[:, 0], -math.inf)
    for j in range(1, zt.shape[1]):
        v = zt[:, j]
        low = torch.minimum(a, v)
        a = torch.maximum(a, v)
        low2 = torch.minimum(b, low)
        b = torch.maximum(b, low)
        c = torch.maximum(c, low2)
    return a, c


@dataclass
class _Block:
    """Consecutive recordings of the same rows: per step the raw distances (m,), logits (m, K) and points
    (m, *S) (when kept); the losses and candidate columns are computed only when the result is read."""

    rows: torch.Tensor | None  # None: the whole batch, one column per step
    dist: list[torch.Tensor] = field(default_factory=list)
    logits: list[torch.Tensor] = field(default_factory=list)  # (K, m) views
    points: list[torch.Tensor] = field(default_factory=list)
    wrong: list[torch.Tensor] = field(default_factory=list)  # (steps, m) zero_one of the folded steps


@dataclass
class Recorder:
    """Candidate points of one batch: distances t (n, M), gains per loss (n, M), closest flip (n,).

    Built from the clean logits z0 (n, K); ``add`` records the candidates x (m, *S) with logits z of
    the samples ``rows``: t = ||x - x0_row|| (see ``distance``), gain = l(z) - l(z0). Per step it only
    computes the distances and keeps the logits, without host synchronisation; the losses, the closest
    flips and the (n, M) columns are computed block-wise when read (``flip``, ``columns``).
    """

    x0: torch.Tensor
    y: torch.Tensor
    z0: torch.Tensor
    norm: str
    losses: tuple[str, ...]
    keep_points: bool = False
    clean: dict[str, torch.Tensor] = field(init=False)
    blocks: list[_Block] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._origin: tuple[torch.Tensor | None, torch.Tensor, torch.Tensor] = (None, self.x0, self.y)
        self._scratch = torch.empty_like(self.x0)
        names = tuple(n for n in self.losses if not (n == "dlr" and self.z0.shape[1] < 3))
        self.clean = {k: v[0].double() for k, v in stacked_losses(self.z0.T[None], self.y, names).items()}
        self.losses = tuple(self.clean)
        wrong = self.z0.argmax(dim=1) != self.y
        dtype = torch.float32 if self.norm == "linf" else torch.float64  # the dtype of _raw_distance
        self._flip = torch.where(wrong, 0.0, math.inf).to(dtype)
        self._columns: tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None] | None = None

    @property
    def flip(self) -> torch.Tensor:
        """(n,) float64 distance of each sample's closest misclassified candidate so far (0 when clean-
        misclassified, inf when none), rounded up like ``distance``."""
        self._fold()
        return self._flip.double() * ROUND_UP

    def _fold(self) -> None:
        """Fold the steps recorded since the last call into the running closest flip (and keep their
        zero_one values for ``columns``): one batched pass per block, not one per step."""
        for block in self.blocks:
            folded = sum(w.shape[0] for w in block.wrong)
            if folded < len(block.dist):
                dist = torch.stack(block.dist[folded:])  # (steps, m)
                zt = torch.stack(block.logits[folded:])  # (steps, K, m)
                y = self.y if block.rows is None else self.y[block.rows]
                block.wrong.append(stacked_losses(zt, y, ("zero_one",))["zero_one"])
                hit = torch.where(block.wrong[-1] > 0.5, dist, math.inf).amin(dim=0)
                if block.rows is None:
                    torch.minimum(self._flip, hit, out=self._flip)
                else:
                    self._flip.scatter_reduce_(0, block.rows, hit, reduce="amin")

    def origin(self, rows: torch.Tensor | slice) -> torch.Tensor:
        """x0_rows (m, *S); the gather for a rows tensor is cached for the last one seen (by identity), as
        an attack evaluates the same rows at every step."""
        if isinstance(rows, slice):
            return self.x0 if rows == slice(None) else self.x0[rows]
        if self._origin[0] is not rows:
            self._origin = (rows, self.x0[rows], self.y[rows])
        return self._origin[1]

    def _raw_distance(self, x: torch.Tensor, sel: torch.Tensor | slice) -> torch.Tensor:
        """||x - x0_sel|| (m,) before rounding up: float32 for linf (exact reduction), float64 for l2/l1."""
        if self._scratch.shape != x.shape:  # reused across steps: no new (m, *S) tensor per call
            self._scratch = torch.empty_like(x)
        diff = torch.sub(x, self.origin(sel), out=self._scratch).reshape(x.shape[0], -1)
        if self.norm == "linf":
            return diff.abs_().amax(dim=1)  # in place: an out-of-place abs costs 2x here
        order = 2.0 if self.norm == "l2" else 1.0
        return torch.linalg.vector_norm(diff, ord=order, dim=1, dtype=torch.float64)

    def distance(self, x: torch.Tensor, sel: torch.Tensor | slice) -> torch.Tensor:
        """||x - x0_sel|| (m,) in float64, never below the exact distance of the stored float32 points.

        The differences are taken in float32, each within a relative 2^-24 of the exact one (round to
        nearest), and reduced per sample: linf exactly (|.| and max do not round), l2/l1 in float64
        (relative error below d 2^-53). The result is rounded up by the factor 1 + 1e-6, which covers
        both for any d < 2^30 and stays below the 1 - 1e-5 shrink of ``safe_radius``.
        """
        return self._raw_distance(x, sel).double() * ROUND_UP

    def add(self, x: torch.Tensor, z: torch.Tensor, rows: torch.Tensor, full: bool = False) -> None:
        """Record the m candidates x (m, *S) with logits z (m, K) of batch samples rows (m,); ``full``
        says that rows is exactly 0..n-1. The j-th occurrence of a sample in ``rows`` is a new column."""
        x = x.detach()
        key = None if full else rows
        if not self.blocks or self.blocks[-1].rows is not key:
            self.blocks.append(_Block(key))
        block = self.blocks[-1]
        block.dist.append(self._raw_distance(x, slice(None) if full else rows))
        block.logits.append(z.detach().T)  # class-major: see stacked_losses
        if self.keep_points:
            block.points.append(x.clone())  # attacks may update an iterate in place after recording it
        self._columns = None

    def columns(self) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """(t (n, M) float64, {loss: gains (n, M) float64}, points (n, M, *S) or None) of every candidate
        recorded so far; padding: t = inf, gain 0, point x0. Laid out block by block (one scatter each)."""
        if self._columns is None:
            parts = [self._layout(b) for b in self.blocks]
            n = self.x0.shape[0]
            empty = self.x0.new_zeros((n, 0), dtype=torch.float64)
            t = torch.cat([p[0] for p in parts], 1) if parts else empty
            gains = {k: torch.cat([p[1][k] for p in parts], 1) if parts else empty for k in self.losses}
            points = torch.cat([p[2] for p in parts], 1) if parts and self.keep_points else None
            self._columns = (t, gains, points)
        return self._columns

    def _layout(self, block: _Block) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """One block's columns: step-major, and within a step one column per occurrence of a row."""
        n, steps = self.x0.shape[0], len(block.dist)
        rows = self.all_rows() if block.rows is None else block.rows
        dist = torch.stack(block.dist, 1).double() * ROUND_UP  # (m, steps)
        self._fold()  # every step's zero_one values are then known
        scored = tuple(k for k in self.losses if k != "zero_one")
        losses = stacked_losses(torch.stack(block.logits), self.y[rows], scored) if scored else {}
        if "zero_one" in self.losses:
            losses["zero_one"] = torch.cat(block.wrong)
        values = {k: v.T.double() - self.clean[k][rows, None] for k, v in losses.items()}  # (m, steps)
        if block.rows is None:
            points = torch.stack(block.points, 1) if self.keep_points else None
            return dist, values, points
        copies = rows.shape[0] // n
        if rows.shape[0] == copies * n and torch.equal(rows, self.all_rows().repeat(copies)):
            return self._layout_repeated(dist, values, block, copies)
        col = occurrence(rows)
        width = int(col.max()) + 1
        t = dist.new_full((n, steps, width), math.inf)
        t[rows, :, col] = dist
        gains = {}
        for name, v in values.items():
            g = dist.new_zeros((n, steps, width))
            g[rows, :, col] = v
            gains[name] = g.reshape(n, -1)
        points = None
        if self.keep_points:
            shape = self.x0.shape[1:]
            points = self.x0[:, None, None].expand(n, steps, width, *shape).clone()
            points[rows, :, col] = torch.stack(block.points, 1)
            points = points.reshape(n, steps * width, *shape)
        return t.reshape(n, -1), gains, points

    def _layout_repeated(
        self, dist: torch.Tensor, values: dict[str, torch.Tensor], block: _Block, copies: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """``_layout`` of a block whose rows are 0..n-1 repeated ``copies`` times (a probe of k targets):
        entry c n + i is occurrence c of sample i, so the columns are a reshape, not a scatter."""
        n, steps = self.x0.shape[0], len(block.dist)

        def columns(v: torch.Tensor) -> torch.Tensor:  # (copies n, steps, *S) -> (n, steps copies, *S)
            v = v.reshape(copies, n, steps, *v.shape[2:]).movedim(0, 2)
            return v.reshape(n, steps * copies, *v.shape[3:])

        points = columns(torch.stack(block.points, 1)) if self.keep_points else None
        return columns(dist), {k: columns(v) for k, v in values.items()}, points

    def all_rows(self) -> torch.Tensor:
        """0..n-1."""
        return torch.arange(self.x0.shape[0], device=self.x0.device)


class Batch:
    """One batch under attack: clean inputs x0 (n, *S), labels y (n,), the model, the pass counter and
    the candidate recorder. ``budget``: the threat over the whole run's N samples (radius schedules)."""

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
        budget: Budget,
        keep_points: bool = False,
    ) -> None:
        self.model, self.threat, self.x0, self.y = model, threat, x0, y
        self.passes, self.generator, self.budget = passes, generator, budget
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

    def active(self) -> torch.Tensor:
        """The samples an attack can gain on: the whole batch (``all`` itself), or, when zero_one is the
        only recorded loss, the clean-correct ones (a clean-misclassified sample has zero_one gain <= 0 at
        every point and flip distance 0 already, so its candidates change no result). WDA uses it (its
        probe and ascent draw no random numbers, so its candidates of the other samples are unchanged)."""
        if self.recorder.losses != ("zero_one",):
            return self.all
        correct = self.recorder.clean["zero_one"] == 0
        return self.all if bool(correct.all()) else self.all[correct]

    def evaluate(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of x (m, *S) for samples rows (default: the whole batch); one counted forward, recorded."""
        rows = self.all if rows is None else rows
        with torch.no_grad():
            z = self.model(x)
        self.passes.forward += x.shape[0]
        self.recorder.add(x, z, rows, full=rows is self.all)
        return z

    def gradient(
        self,
        x: torch.Tensor,
        objective: Objective,
        rows: torch.Tensor | None = None,
        values: bool = True,
        record: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(z, v, g): logits, objective values v = objective(z, rows) (m,) (None unless ``values``) and
        g = grad_x v_i (m, *S).

        One counted forward and backward over the m rows; x is recorded as a candidate of the samples
        rows unless ``record`` is False (points that belong to no sample, e.g. the whole-box search). A
        ``LogitObjective`` back-propagates its closed-form logit gradient (no graph through the loss).
        """
        rows = self.all if rows is None else rows
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            z = self.model(x)
            if isinstance(objective, LogitObjective):
                zd = z.detach()
                (g,) = torch.autograd.grad(z, x, grad_outputs=objective.logit_grad(zd, rows))
                v = objective.value(zd, rows) if values else None
            else:
                out = objective(z, rows)
                (g,) = torch.autograd.grad(out.sum(), x)
                zd, v = z.detach(), out.detach()
        self.passes.forward += x.shape[0]
        self.passes.backward += x.shape[0]
        if record:
            self.recorder.add(x, zd, rows, full=rows is self.all)
        return zd, v, g

    def offer(self, x: torch.Tensor, z: torch.Tensor, rows: torch.Tensor) -> None:
        """Record points x (m, *S) whose logits z (m, K) are already known (no model call) as candidates of
        the samples rows (m,)."""
        self.recorder.add(x, z, rows)

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
        per radius for the whole batch, and for the last other ``rows`` tensor seen (by identity), whose
        bounds are gathered from the whole batch's (no second pass over x0)."""
        key = (radius, rows is self.all)
        if key in self._bounds and (rows is self.all or self._bounds_rows is rows):
            return self._bounds[key]
        if (radius, True) not in self._bounds:
            r = max(radius * (1.0 - 1e-5) - 1e-7, 0.0)  # safe_radius, in float64 arithmetic
            self._bounds[radius, True] = ((self.x0 - r).clamp_(min=0.0), (self.x0 + r).clamp_(max=1.0))
        if rows is not self.all:
            self._bounds = {k: v for k, v in self._bounds.items() if k[1]}
            self._bounds_rows = rows
            low, high = self._bounds[radius, True]
            self._bounds[key] = (low[rows], high[rows])
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


TRACK = ("point", "value", "none")


def ascend(
    batch: Batch,
    x: torch.Tensor,
    rows: torch.Tensor,
    objective: Objective,
    radius: float | torch.Tensor,
    steps: int,
    step: float,
    sparsity: float | None = None,
    track: str = "point",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Projected steepest ascent x <- P_{B(x0, radius) cap box}(x + step u(grad objective)), ``steps``
    gradient steps plus one forward at the last iterate (every iterate is a recorded candidate).

    track: "point" returns the best iterate (m, *S) and the best objective value (m,); "value" the last
    iterate and the best value; "none" the last iterate and None (no per-step bookkeeping at all)."""
    if track not in TRACK:
        raise ValueError(f"track must be one of {', '.join(TRACK)}, got {track!r}")
    best_x, best_v = x, torch.full((x.shape[0],), -math.inf, device=x.device)
    for _ in range(steps):
        _, v, g = batch.gradient(x, objective, rows, values=track != "none")
        if track == "point":
            best_x, best_v = keep_best(best_x, best_v, x, v)
        elif track == "value":
            best_v = torch.maximum(best_v, v)
        u = direction(g, x, batch.threat.norm, sparsity, inplace=True)
        x = batch.project(torch.add(x, u, alpha=step, out=u), rows, radius, inplace=True)
    z = batch.evaluate(x, rows)
    if track == "none":
        return x, None
    v = objective(z, rows)
    if track == "point":
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


def move(x: torch.Tensor, eta: torch.Tensor, u: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """x + eta_i u (m, *S) with per-sample step sizes eta (m,), in one fused pass (addcmul); ``inplace``
    writes it into the buffer of u (a direction that nothing else holds: no new (m, *S) tensor)."""
    return torch.addcmul(x, eta.reshape(-1, *([1] * (x.dim() - 1))), u, out=u if inplace else None)
