"""Per-sample increasing upper concave hulls of points (s_ik, g_ik), vectorised over samples.

For each sample i the hull h_i is the least concave majorant of its points restricted to the part where it
increases: it starts at (0, 0) (column 0) and ends at the point of largest gain. Only points on the Pareto
front (sorted by s, gain above every earlier gain) can lie on it. They are swept left to right by Andrew's
monotone chain, one column at a time for all samples at once (the only Python loops run over columns and
over pops, never samples). A point with s = 0 and gain > 0 gives a vertical first segment (slope +inf,
cost 0): free gain the greedy fill takes first.

The chain's pop test compares the stored slopes themselves, so the hull slopes of every sample come out
strictly decreasing as floats: the greedy fill can rely on that order without a stable sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Hull:
    """Hull vertices of N samples, left to right, padded to width H.

    index: (N, H) int64 column of each vertex in the input arrays (0 past ``count``).
    s, g: (N, H) vertex coordinates; slope: (N, H) slope of the segment ending at each vertex
    (slope[:, 0] = +inf; strictly decreasing and > 0 along each row up to ``count``).
    count: (N,) number of vertices (>= 1: the start vertex always exists).
    """

    index: np.ndarray
    s: np.ndarray
    g: np.ndarray
    slope: np.ndarray
    count: np.ndarray


def _sorted_front(s: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Points with gain > 0 sorted by s after the start (column 0), and the mask of the Pareto front.

    Returns (s, g, column, front), each (R, W) with W the largest number of candidates per row plus one;
    ``front`` marks the points whose gain exceeds that of every point before them (g strictly increasing).
    """
    keep = np.isfinite(s) & (g > 0)
    width = int(keep.sum(axis=1).max(initial=0)) + 1
    key = np.where(keep, s, np.inf)
    key[:, 0] = -1.0  # the start vertex (0, 0) sorts first
    order = np.argsort(key, axis=1)[:, :width]
    ks = np.take_along_axis(key, order, axis=1)
    kg = np.take_along_axis(g, order, axis=1)
    ks[:, 0] = 0.0
    front = np.isfinite(ks)
    front[:, 1:] &= kg[:, 1:] > np.maximum.accumulate(kg, axis=1)[:, :-1]
    return ks, kg, order, front


def _chunk_hull(s: np.ndarray, g: np.ndarray) -> Hull:
    """Hull of a chunk of rows; the stacks are kept column-major so each column step is contiguous.

    Along the Pareto front g increases strictly, so a point with the same s as the stack top has slope
    +inf to it and pops it: ties in s need no special case.
    """
    r = s.shape[0]
    lane = np.arange(r)
    front_s, front_g, front_k, live_all = (np.ascontiguousarray(a.T) for a in _sorted_front(s, g))
    width = front_s.shape[0]
    hs = np.zeros((width, r))  # stacks: vertex v of row i at [v, i]
    hg = np.zeros((width, r))
    hk = np.zeros((width, r), dtype=np.int64)
    hsl = np.full((width, r), np.inf)
    hsl[0] = np.nan  # the start vertex is never popped (nan <= x is False)
    hg[0], hk[0] = front_g[0], front_k[0]
    fs, fg, fsl, fk = hs.reshape(-1), hg.reshape(-1), hsl.reshape(-1), hk.reshape(-1)
    top = np.ones(r, dtype=np.int64)
    for j in range(1, width):
        cs, cg, live = front_s[j], front_g[j], live_all[j]
        pos = (top - 1) * r + lane
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (cg - fg[pos]) / (cs - fs[pos])
            pending = np.flatnonzero(live & (fsl[pos] <= slope))
            while pending.size:  # pop the top while it lies on or below the chord to the new point
                top[pending] -= 1
                at = (top[pending] - 1) * r + pending
                new = (cg[pending] - fg[at]) / (cs[pending] - fs[at])
                slope[pending] = new
                pending = pending[fsl[at] <= new]
        pos = top * r + lane  # the free slot above each stack; rows that do not push leave it unused
        fs[pos], fg[pos], fsl[pos], fk[pos] = cs, cg, slope, front_k[j]
        top += live
    hsl[0] = np.inf
    return Hull(index=hk.T, s=hs.T, g=hg.T, slope=hsl.T, count=top)


def increasing_hull(s: np.ndarray, g: np.ndarray, chunk: int = 1 << 13) -> Hull:
    """Increasing upper concave hull of each row of points (s (N, M) >= 0 or +inf, g (N, M)).

    Every row must hold a point with s = 0 (AttainedPoints puts (0, 0) in column 0); s = +inf marks
    padding. Vertices are returned with their column indices into s and g. Rows are processed in chunks
    of ``chunk`` so that each column step works in cache.
    """
    n = s.shape[0]
    parts = [_chunk_hull(s[a : a + chunk], g[a : a + chunk]) for a in range(0, n, chunk)]
    width = max((int(h.count.max()) for h in parts), default=1)

    def stack(field: str, fill: float) -> np.ndarray:
        out = np.full((n, width), fill, dtype=getattr(parts[0], field).dtype if parts else np.float64)
        for a, h in zip(range(0, n, chunk), parts, strict=True):
            block = getattr(h, field)[:, :width]
            out[a : a + block.shape[0], : block.shape[1]] = block
        return out

    count = np.concatenate([h.count for h in parts]) if parts else np.zeros(0, dtype=np.int64)
    return Hull(
        index=stack("index", 0), s=stack("s", 0.0), g=stack("g", 0.0), slope=stack("slope", 0.0), count=count
    )
