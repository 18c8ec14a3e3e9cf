"""Per-sample increasing upper concave hulls of points (s_ik, g_ik), vectorised over samples.

For each sample i the hull h_i is the least concave majorant of its points restricted to the part where it
increases: it starts at (0, 0) (column 0) and ends at the point of largest gain. Only points whose gain
exceeds every gain at smaller s (the Pareto front) can lie on it. The points are sorted by s and swept left
to right by Andrew's monotone chain, one column at a time for all samples of a chunk at once (the only
Python loops run over chunks, columns and pops, never over samples). A point with s = 0 and gain > 0 gives
a vertical first segment (slope +inf, cost 0): free gain the greedy fill takes first.

The stacks are vertex-major, shape (W, R): each column step then reads and writes contiguous memory. The
chain's pop test compares stored slopes themselves, so hull slopes come out strictly decreasing as floats
along each sample, and the greedy fill can rely on that order without a stable sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Rows per chunk: keeps a chunk's stacks in cache.
CHUNK = 1 << 12


@dataclass(frozen=True)
class Hull:
    """Hull vertices of R samples, vertex-major: arrays (W, R), vertex v of sample i at [v, i].

    index: int64 column of each vertex in the input arrays. s, g: vertex coordinates. slope: slope of the
    segment ending at each vertex (row 0 unused). count: (R,) number of vertices (>= 1: the start).
    Entries at v >= count[i] are garbage.
    """

    index: np.ndarray
    s: np.ndarray
    g: np.ndarray
    slope: np.ndarray
    count: np.ndarray

    def segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(slope, cost, sample) of every hull segment, flattened vertex-major; shapes (E,)."""
        width = self.s.shape[0]
        used = np.arange(1, width)[:, None] < self.count[None, :]
        lane = np.broadcast_to(np.arange(self.count.shape[0]), used.shape)
        return self.slope[1:][used], (self.s[1:] - self.s[:-1])[used], lane[used]

    def vertex(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(index, s, g) of vertex v_i of each sample, v: (R,) int."""
        lane = np.arange(v.shape[0])
        return self.index[v, lane], self.s[v, lane], self.g[v, lane]


def _sorted_columns(s: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points that can lie on the hull, sorted by s after the start (column 0), vertex-major (W, R):
    (s, g, original column), other entries padded with g = -inf. A point can lie on it only if it is on the
    Pareto front, g > 0 and s finite with g above every gain sorted before it (the chain's running maximum:
    any other point is never pushed), so the others are dropped here and the column sweep runs over the
    front only. W: the largest front per row, plus 1."""
    r, m = s.shape
    useful = (g > 0) & (s < np.inf)  # s = inf: padding, or t^p overflowed
    key = np.where(useful, s, np.inf)
    key[:, 0] = -1.0  # the start vertex (0, 0) sorts first
    order = np.argsort(key, axis=1)
    gain = np.take_along_axis(np.where(useful, g, -np.inf), order, axis=1)
    gain[:, 0] = 0.0
    before = np.maximum.accumulate(gain, axis=1)
    front = np.empty((r, m), dtype=bool)
    front[:, 0] = True
    front[:, 1:] = gain[:, 1:] > before[:, :-1]
    width = int(front.sum(axis=1).max(initial=1))
    keep = np.argsort(~front, axis=1, kind="stable")[:, :width]  # front columns first, in s order
    order = np.take_along_axis(order, keep, axis=1)
    kept = np.take_along_axis(front, keep, axis=1)
    flat = (order + (np.arange(r) * m)[:, None]).T.ravel()
    cs = s.ravel()[flat].reshape(width, r)
    cg = np.where(kept.T, g.ravel()[flat].reshape(width, r), -np.inf)
    return cs, cg, np.ascontiguousarray(order.T)


def _chunk_hull(s: np.ndarray, g: np.ndarray) -> Hull:
    """Monotone chain over the sorted columns of one chunk. A point joins only if its gain exceeds the
    stack top's (the running maximum: Pareto front; the padding sorted last has gain -inf and never
    joins); equal s then means slope +inf, which pops the top, so ties need no special case."""
    r = s.shape[0]
    lane = np.arange(r)
    cs_all, cg_all, ck_all = _sorted_columns(s, g)
    width = cs_all.shape[0]
    hs = np.zeros((width, r))
    hg = np.zeros((width, r))
    hk = np.zeros((width, r), dtype=np.int64)
    hsl = np.empty((width, r))
    hsl[0] = np.nan  # the start vertex is never popped (nan <= x is False)
    fs, fg, fsl, fk = hs.reshape(-1), hg.reshape(-1), hsl.reshape(-1), hk.reshape(-1)
    pos = lane.copy()  # flat position of each stack's top vertex: (count - 1) * r + lane
    with np.errstate(divide="ignore", invalid="ignore"):
        for j in range(1, width):
            cs, cg = cs_all[j], cg_all[j]
            bg = fg[pos]
            live = cg > bg
            slope = (cg - bg) / (cs - fs[pos])
            pending = np.flatnonzero(live & (fsl[pos] <= slope))
            while pending.size:  # pop the top while it lies on or below the chord to the new point
                at = pos[pending] - r
                pos[pending] = at
                new = (cg[pending] - fg[at]) / (cs[pending] - fs[at])
                slope[pending] = new
                pending = pending[fsl[at] <= new]
            slot = pos + r  # the free slot above each stack; rows that do not push leave it unused
            fs[slot], fg[slot], fsl[slot], fk[slot] = cs, cg, slope, ck_all[j]
            pos = np.where(live, slot, pos)
    return Hull(index=hk, s=hs, g=hg, slope=hsl, count=pos // r + 1)


def increasing_hulls(s: np.ndarray, g: np.ndarray, chunk: int | None = None) -> list[Hull]:
    """Increasing upper concave hull of each row of points (s (N, M) >= 0 or +inf, g (N, M)), returned
    per chunk of ``chunk`` rows (default CHUNK), in row order.

    Column 0 of every row must be the point (0, 0) (AttainedPoints puts it there); s = +inf marks padding
    (its gain must be <= 0, which AttainedPoints ensures by setting it to 0).
    """
    size = chunk or CHUNK
    return [_chunk_hull(s[a : a + size], g[a : a + size]) for a in range(0, s.shape[0], size)]
