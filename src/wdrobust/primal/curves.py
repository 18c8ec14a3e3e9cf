"""Per-sample growth data: attained points (attack side) and growth majorants (certificate side).

Both are batched over N samples with numpy float64 arrays; no Python loop over samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def _as_2d(name: str, a: np.ndarray | list) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, M), got {arr.shape}")
    return arr


def segment_starts(knots: np.ndarray) -> np.ndarray:
    """The start r_k-1 of every segment (r_k-1, r_k] of per-sample knots (N, M) (r_0 = 0), shape (N, M)."""
    return np.concatenate([np.zeros((knots.shape[0], 1)), knots[:, :-1]], axis=1)


def pad_columns(a: np.ndarray, width: int, value: float) -> np.ndarray:
    """a (N, M, *S) padded on the right of its column axis with ``value`` to (N, width, *S), width >= M."""
    return np.pad(a, [(0, 0), (0, width - a.shape[1]), *[(0, 0)] * (a.ndim - 2)], constant_values=value)


def stack_points(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Row-stack (t (N_b, M_b), g (N_b, M_b)) blocks of different widths M_b into (sum N_b, max M_b);
    missing columns are padding (t = inf, g = 0)."""
    width = max(t.shape[1] for t, _ in parts)
    t = np.concatenate([pad_columns(t, width, np.inf) for t, _ in parts])
    g = np.concatenate([pad_columns(g, width, 0.0) for _, g in parts])
    return t, g


@dataclass
class AttainedPoints:
    """Points an attack reached: distance t_ik = ||x_ik - x_i|| and gain g_ik = l(x_ik) - l(x_i).

    t, g: shape (N, M). A column (0, 0) is prepended, so every sample can stay where it is.
    Padding entries are marked by t = +inf (they are never used). NaN, negative distances and
    shape mismatches raise ValueError.
    """

    t: np.ndarray
    g: np.ndarray

    def __post_init__(self) -> None:
        t = _as_2d("t", self.t)
        g = _as_2d("g", self.g)
        if t.shape != g.shape:
            raise ValueError(f"distance and gain shapes differ: {t.shape} vs {g.shape}")
        if np.isnan(t).any():
            raise ValueError("distances contain NaN")
        if np.isnan(g).any():
            raise ValueError("gains contain NaN")
        if (t < 0).any():
            raise ValueError("distances must be >= 0")
        if np.isinf(g[np.isfinite(t)]).any():
            raise ValueError("gains of reachable points must be finite")
        g = np.where(np.isfinite(t), g, 0.0)
        zeros = np.zeros((t.shape[0], 1))
        self.t = np.concatenate([zeros, t], axis=1)
        self.g = np.concatenate([zeros, g], axis=1)

    @property
    def n(self) -> int:
        """Number of samples N."""
        return self.t.shape[0]

    @staticmethod
    def union(parts: Sequence[AttainedPoints]) -> AttainedPoints:
        """The points of several attacks on the same N samples side by side per sample (columns joined,
        one clean point): the union of attained points is again a set of attained points."""
        return AttainedPoints(
            np.concatenate([p.t[:, 1:] for p in parts], 1), np.concatenate([p.g[:, 1:] for p in parts], 1)
        )


@dataclass
class Majorant:
    """Sound (or estimated) per-sample growth majorant phibar_i(t) >= phi_i(t), piecewise linear with
    upward jumps.

    knots: shape (N, M), per-sample increasing outer radii r_i1 < ... < r_iM of the segments; the last
        knot is the diameter of X (no point lies farther). slopes: shape (N, M), slope >= 0 on the
        segment (r_i,k-1, r_ik] (r_i0 = 0); +inf is allowed (a jump to the cap at r_i,k-1, e.g. zero_one
        at a certified radius; ``__call__`` gives the value just before the jump, upper_bound counts the
        cap from r_i,k-1 on). jumps: shape (N, M) or None (zeros), finite jumps >= 0 at the start of each
        segment, counted for t > r_i,k-1 (phibar is left-continuous there: a staircase bound U_k of the
        growth over the ball of radius r_k is a jump of U_k - U_k-1 at r_k-1). cap: shape (N,), phibar is
        min(cap_i, PL(t)) (+inf = no cap).

        phibar_i(t) = min(cap_i, sum_k jumps_ik 1{t > r_i,k-1} + slopes_ik |[0, t] cap (r_i,k-1, r_ik]|)

    sound: True only when phibar_i >= phi_i is guaranteed; estimates carry False.
    """

    knots: np.ndarray
    slopes: np.ndarray
    cap: np.ndarray | None = None
    sound: bool = True
    name: str = field(default="")
    jumps: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.knots = _as_2d("knots", self.knots)
        self.slopes = _as_2d("slopes", self.slopes)
        if self.knots.shape != self.slopes.shape:
            raise ValueError(f"knots and slopes shapes differ: {self.knots.shape} vs {self.slopes.shape}")
        if np.isnan(self.knots).any() or np.isnan(self.slopes).any():
            raise ValueError("majorant contains NaN")
        if not np.isfinite(self.knots).all():
            raise ValueError("majorant knots must be finite (the last one is the diameter of X)")
        if (self.slopes < 0).any():
            raise ValueError("majorant slopes must be >= 0")
        if (self.knots <= 0).any() or (np.diff(self.knots, axis=1) <= 0).any():
            raise ValueError("majorant knots must be positive and strictly increasing per sample")
        n = self.knots.shape[0]
        cap = np.full(n, np.inf) if self.cap is None else np.asarray(self.cap, dtype=np.float64).reshape(-1)
        if cap.shape != (n,):
            raise ValueError(f"cap must have shape ({n},), got {cap.shape}")
        if np.isnan(cap).any() or (cap < 0).any():
            raise ValueError("cap must be >= 0 and not NaN")
        self.cap = cap
        jumps = np.zeros_like(self.knots) if self.jumps is None else _as_2d("jumps", self.jumps)
        if jumps.shape != self.knots.shape:
            raise ValueError(f"jumps must have shape {self.knots.shape}, got {jumps.shape}")
        if not np.isfinite(jumps).all() or (jumps < 0).any():
            raise ValueError("majorant jumps must be finite and >= 0")
        self.jumps = jumps

    @classmethod
    def from_pieces(
        cls,
        knots: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        cap: np.ndarray | None = None,
        *,
        sound: bool = True,
        name: str = "",
    ) -> Majorant:
        """The majorant that is linear on each segment (r_k-1, r_k] from ``left`` (its limit at r_k-1+) to
        ``right`` (its value at r_k); knots, left, right (N, M), knots increasing with r_M = diam X.

        The pieces are first made non-decreasing upwards (which keeps every value a majorant): left_k is
        raised to the previous right value and right_k to left_k, by a running maximum. Zero-width
        segments (repeated knots) are dropped.
        """
        knots = _as_2d("knots", knots)
        left = np.maximum(_as_2d("left", left), 0.0)
        right = np.maximum(_as_2d("right", right), left)
        edges = np.stack([left, right], axis=2).reshape(left.shape[0], -1)
        edges = np.maximum.accumulate(edges, axis=1).reshape(left.shape[0], -1, 2)
        left, right = edges[:, :, 0], edges[:, :, 1]
        lo = segment_starts(knots)
        width = knots - lo
        keep = width > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            slopes = np.where(keep, (right - left) / np.where(keep, width, 1.0), 0.0)
        before = np.concatenate([np.zeros((knots.shape[0], 1)), right[:, :-1]], axis=1)
        jumps = left - before
        knots, slopes, jumps = _compact(knots, slopes, jumps, keep)
        return cls(knots, np.maximum(slopes, 0.0), cap, sound=sound, name=name, jumps=np.maximum(jumps, 0.0))

    def minimum(self, other: Majorant) -> Majorant:
        """The pointwise minimum of two majorants of the same N samples; sound only when both are (the
        minimum with an estimate can fall below the truth). Slopes must be finite.

        On the union of both knot sets and the points where a cap is reached both are linear; where they
        cross inside a segment the segment is split at the crossing.
        """
        if other.n != self.n:
            raise ValueError(f"minimum of majorants of {self.n} and {other.n} samples")
        if not (np.isfinite(self.slopes).all() and np.isfinite(other.slopes).all()):
            raise ValueError("minimum needs finite slopes")
        ends = [self.knots, other.knots, self.cap_reached()[:, None], other.cap_reached()[:, None]]
        merged = np.sort(np.concatenate(ends, axis=1), axis=1)
        n = self.n
        lo = segment_starts(merged)
        fa_l, fa_r = self.limits(lo, merged)
        fb_l, fb_r = other.limits(lo, merged)
        d_l, d_r = fa_l - fb_l, fa_r - fb_r
        cross = (d_l * d_r) < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(cross, d_l / (d_l - d_r), 1.0)
        mid = lo + frac * (merged - lo)
        mid = np.where(cross, np.clip(mid, lo, merged), merged)
        at_mid = np.minimum(fa_l + frac * (fa_r - fa_l), fb_l + frac * (fb_r - fb_l))
        at_mid = np.where(cross, at_mid, np.minimum(fa_r, fb_r))
        # each merged segment -> (lo, mid] and (mid, hi]: the second has zero width without a crossing
        knots = np.stack([mid, merged], axis=2).reshape(n, -1)
        left = np.stack([np.minimum(fa_l, fb_l), at_mid], axis=2).reshape(n, -1)
        right = np.stack([at_mid, np.minimum(fa_r, fb_r)], axis=2).reshape(n, -1)
        cap = np.minimum(self.cap, other.cap)
        name = self.name if self.name == other.name else f"min({self.name}, {other.name})"
        return Majorant.from_pieces(knots, left, right, cap, sound=self.sound and other.sound, name=name)

    def cap_reached(self) -> np.ndarray:
        """(N,) the smallest t where phibar reaches the cap (the last knot if it never does)."""
        lo = segment_starts(self.knots)
        start = self.start_values()  # value at lo+ (jump included)
        end = start + self.slopes * (self.knots - lo)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(
                start >= self.cap[:, None],
                lo,
                np.where(end >= self.cap[:, None], lo + (self.cap[:, None] - start) / self.slopes, np.inf),
            )
        t = np.minimum(t.min(axis=1), self.knots[:, -1])
        return np.clip(t, 0.0, self.knots[:, -1])

    def start_values(self) -> np.ndarray:
        """(N, M) uncapped phibar at the start r_k-1 of each segment, right limit: the rises of the earlier
        segments plus the jumps up to and including the segment's own (inf after an infinite slope)."""
        lo = segment_starts(self.knots)
        rise = self.slopes * (self.knots - lo)
        before = np.concatenate([np.zeros((self.n, 1)), np.cumsum(rise, axis=1)[:, :-1]], axis=1)
        return before + np.cumsum(self.jumps, axis=1)

    def limits(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(phibar(lo+), phibar(hi)) for segments (lo, hi] (N, W) that lie inside one segment of the
        majorant each (true for the merged knots of ``minimum``); finite slopes."""
        return self.at(lo, right=True), self.at(hi)

    @property
    def n(self) -> int:
        """Number of samples N."""
        return self.knots.shape[0]

    def widen(self, width: int) -> Majorant:
        """The same phibar with ``width`` >= M segments: the last segment (r_M-1, r_M] is split into
        width - M + 1 equal pieces with its slope, so phibar is unchanged and the last knot stays."""
        n, m = self.knots.shape
        extra = width - m
        if extra == 0:
            return self
        lo = self.knots[:, -2] if m > 1 else np.zeros(n)
        frac = np.arange(1, extra + 2) / (extra + 1)
        tail = lo[:, None] + (self.knots[:, -1] - lo)[:, None] * frac[None, :]
        tail[:, -1] = self.knots[:, -1]
        knots = np.concatenate([self.knots[:, :-1], tail], axis=1)
        slopes = np.concatenate([self.slopes, np.repeat(self.slopes[:, -1:], extra, axis=1)], axis=1)
        jumps = pad_columns(self.jumps, width, 0.0)
        return Majorant(knots, slopes, self.cap, sound=self.sound, name=self.name, jumps=jumps)

    @staticmethod
    def stack(parts: Sequence[Majorant]) -> Majorant:
        """Row-stack majorants of N_b samples and M_b segments into one of sum N_b samples and max M_b
        segments (``widen``); sound only if every part is, named after the first part."""
        if not parts:
            raise ValueError("stack needs at least one majorant")
        width = max(p.knots.shape[1] for p in parts)
        widened = [p.widen(width) for p in parts]
        return Majorant(
            np.concatenate([w.knots for w in widened]),
            np.concatenate([w.slopes for w in widened]),
            np.concatenate([w.cap for w in widened]),
            sound=all(p.sound for p in parts),
            name=parts[0].name,
            jumps=np.concatenate([w.jumps for w in widened]),
        )

    def __call__(self, t: np.ndarray | float, *, right: bool = False) -> np.ndarray:
        """phibar_i(t_i) for t of shape (N,) or a scalar; returns shape (N,). right: the right limit
        phibar_i(t_i+) instead (the jumps of the segments starting at r_k-1 = t_i are counted too)."""
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (self.n,))
        return self.at(t[:, None], right=right)[:, 0]

    def at(self, t: np.ndarray, *, right: bool = False) -> np.ndarray:
        """phibar_i(t_ik) (right: the right limits phibar_i(t_ik+)) for t >= 0 of shape (N, K); (N, K).

        With s_ik the segment of t_ik (the number of knots r_ij < t_ik, or <= t_ik for right limits, at
        most M - 1) and lo = r_i,s-1: phibar = min(cap_i, B_is + J_is [lo < t] + a_is (min(t, r_is) - lo)),
        B_is the uncapped value at lo (rises and jumps of the earlier segments; inf after an infinite
        slope), [lo <= t] for right limits. Cost O(N M) for K = 1, else O(N (M + K) log(M + K)).
        """
        t = np.asarray(t, dtype=np.float64)
        s = np.minimum(_count_knots(self.knots, t, right), self.knots.shape[1] - 1)
        lo_all = segment_starts(self.knots)
        rise = self.slopes * (self.knots - lo_all)  # widths > 0: inf only for infinite slopes
        before = np.concatenate(
            [np.zeros((self.n, 1)), np.cumsum(rise, axis=1)[:, :-1] + np.cumsum(self.jumps, axis=1)[:, :-1]],
            axis=1,
        )

        def take(a: np.ndarray) -> np.ndarray:
            return np.take_along_axis(a, s, axis=1)

        lo, a = take(lo_all), take(self.slopes)
        inside = np.minimum(t, take(self.knots)) - lo
        started = lo <= t if right else lo < t
        with np.errstate(invalid="ignore"):
            grown = np.where(inside > 0, a * inside, 0.0)
        value = take(before) + np.where(started, take(self.jumps), 0.0) + grown
        return np.minimum(self.cap[:, None], value)


def _count_knots(knots: np.ndarray, t: np.ndarray, right: bool) -> np.ndarray:
    """(N, K) int: per row, the number of knots r_ij < t_ik (<= t_ik when ``right``); knots (N, M)
    increasing per row. One comparison per knot for K = 1, else one stable sort of each row's points and
    knots (on ties the points sort first, or the knots first when ``right``)."""
    m, k = knots.shape[1], t.shape[1]
    if k == 1:
        return ((knots <= t) if right else (knots < t)).sum(axis=1, keepdims=True)
    both = np.concatenate([knots, t] if right else [t, knots], axis=1)
    order = np.argsort(both, axis=1, kind="stable")
    below = np.cumsum((order >= k) if not right else (order < m), axis=1)  # knots up to each position
    counts = np.empty_like(below)
    np.put_along_axis(counts, order, below, axis=1)  # back in the order of ``both``
    return counts[:, m:] if right else counts[:, :k]


def _compact(
    knots: np.ndarray, slopes: np.ndarray, jumps: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop the segments with keep False (zero width; their jumps move to the next kept segment) and pad
    rows with fewer kept segments by splitting their widest segment into equal pieces (same slope, the
    jump on the first piece), so that every row has strictly increasing knots; arrays (N, M) -> (N, M').
    The widest segment is at least 1/M' of the row's range, so its pieces stay apart in floating point
    (a last segment a few ulps wide, where two majorants' diameters differ by rounding, could not)."""
    n, m = knots.shape
    # a kept segment's jump is the sum of the jumps since the previous kept segment
    carried = np.cumsum(jumps, axis=1)
    last_kept = np.maximum.accumulate(np.where(keep, np.arange(m)[None, :], -1), axis=1)
    before = np.concatenate([np.full((n, 1), -1), last_kept[:, :-1]], axis=1)
    base = np.where(before >= 0, np.take_along_axis(carried, np.maximum(before, 0), axis=1), 0.0)
    jumps = np.where(keep, carried - base, 0.0)
    count = keep.sum(axis=1)
    width = int(count.max())
    order = np.argsort(~keep, axis=1, kind="stable")[:, :width]
    k = np.take_along_axis(knots, order, axis=1)
    s = np.take_along_axis(slopes, order, axis=1)
    j = np.take_along_axis(jumps, order, axis=1)
    if (count == width).all():
        return k, s, j
    col = np.arange(width)[None, :]
    starts = segment_starts(k)
    size = np.where(col < count[:, None], k - starts, -np.inf)
    wide = size.argmax(axis=1)[:, None]  # the widest kept segment of each row
    pieces = (width - count + 1)[:, None]
    # output column c takes kept segment c before the widest one, piece c - wide of it, then c - pieces + 1
    inside = (col >= wide) & (col < wide + pieces)
    src = np.where(col < wide, col, np.where(inside, wide, col - pieces + 1))
    lo = np.take_along_axis(starts, wide, axis=1)
    hi = np.take_along_axis(k, wide, axis=1)
    split = lo + (hi - lo) * (col - wide + 1) / pieces
    out_k = np.where(inside, split, np.take_along_axis(k, src, axis=1))
    out_k = np.where(col == wide + pieces - 1, hi, out_k)  # the segment's own end, exactly
    out_s = np.take_along_axis(s, src, axis=1)
    out_j = np.where(inside & (col > wide), 0.0, np.take_along_axis(j, src, axis=1))
    return out_k, out_s, out_j
