"""Candidate recording: every evaluated point of an attack becomes a candidate of its sample.

Per batch of n samples the recorder builds the columns the primal solver reads: distances
t (n, M) = ||x_ik - x0_i|| (float64, never below the exact distance of the stored float32 point), gains
(n, M) = l(z_ik, y_i) - l(z0_i, y_i) per recorded loss, and the closest flip (n,) = the smallest t_ik
of a misclassified candidate (0 when clean-misclassified, inf when none). Padding: t = inf, gain 0.

Per step it keeps only the distances (m,) and logits (m, K) of the m evaluated rows (no losses, no host
synchronisation); losses, flips and columns are computed block-wise (a block = consecutive steps of the
same rows tensor) when read, by ``stacked_losses``. The j-th occurrence of sample i among a step's rows
is a new candidate column of sample i.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from wdrobust.attacks.stacked_losses import stacked_losses

#: Rounding-up factor of recorded distances (see ``Recorder.distance``).
ROUND_UP = 1 + 1e-6


def occurrence(rows: torch.Tensor) -> torch.Tensor:
    """For rows (m,), the number of earlier entries equal to rows[i] (0 for the first occurrence)."""
    order = torch.argsort(rows, stable=True)
    ranked = rows[order]
    first = torch.searchsorted(ranked, ranked)
    rank = torch.empty_like(rows)
    rank[order] = torch.arange(rows.shape[0], device=rows.device) - first
    return rank


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
