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


def pad_columns(a: np.ndarray, width: int, value: float) -> np.ndarray:
    """a (N, M) padded on the right with ``value`` to (N, width), width >= M."""
    return np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=value)


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


@dataclass
class Majorant:
    """Sound (or estimated) per-sample growth majorant phibar_i(t) >= phi_i(t), piecewise linear.

    knots: shape (N, M), per-sample increasing outer radii r_i1 < ... < r_iM of the segments; the last
        knot is the diameter of X (no point lies farther). slopes: shape (N, M), slope >= 0 on the
        segment (r_i,k-1, r_ik] (r_i0 = 0); +inf is allowed (a jump to the cap at r_i,k-1, e.g. zero_one
        at a certified radius; ``__call__`` gives the value just before the jump, upper_bound counts the
        cap from r_i,k-1 on). cap: shape (N,), phibar is min(cap_i, PL(t))
        (+inf = no cap).

        phibar_i(t) = min(cap_i, sum_k slopes_ik * |[0, t] cap (r_i,k-1, r_ik]|)

    sound: True only when phibar_i >= phi_i is guaranteed; estimates carry False.
    """

    knots: np.ndarray
    slopes: np.ndarray
    cap: np.ndarray | None = None
    sound: bool = True
    name: str = field(default="")

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
        return Majorant(knots, slopes, self.cap, sound=self.sound, name=self.name)

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
        )

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        """phibar_i(t_i) for t of shape (N,) or a scalar; returns shape (N,)."""
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (self.n,))
        lo = np.concatenate([np.zeros((self.n, 1)), self.knots[:, :-1]], axis=1)
        inside = np.clip(np.minimum(t[:, None], self.knots) - lo, 0.0, None)
        with np.errstate(invalid="ignore"):
            grown = np.where(inside > 0, self.slopes * inside, 0.0).sum(axis=1)
        return np.minimum(self.cap, grown)
