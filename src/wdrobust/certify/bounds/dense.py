"""Affine segments of a traced graph as dense matrices (the weight-based certificates: global, milp, exact).

A segment is a maximal path u -> n_1 -> ... -> n_k of affine nodes with one interval argument each, whose
inner values feed only the next node (a Sequential's Flatten, Linear; Normalize, Conv2d, BatchNorm; ...):
the map u -> n_k is affine, n_k = M u + b. ``find_segments(graph)`` finds them, keyed by their last node.
``Dense(graph, input_shape)`` instantiates the graph's rules once on the whole box X = [0, 1]^d (one row, in
the graph's dtype: float64 for certificates) and gives for a segment:
- ``transpose``: M^T v exactly, and |M|^T r for the radius of an interval cotangent: with |M| when M is
  materialised, else the product of the leaves' |A_i|^T (an elementwise upper bound, since
  |A_k ... A_1| <= |A_k| ... |A_1|);
- ``matrix``: M (d_out, d_in) when d_in d_out <= MATERIALISE_LIMIT (the transposes of the output basis);
- ``offset``: b (d_out,) = the segment evaluated with u = 0;
- ``spectral_bound``: >= ||M||_2, the exact largest singular value of a materialised M, else
  sqrt(||M||_1 ||M||_inf) with the leafwise |A| in both factors (power iteration converges from below,
  so it is not used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import fx

from wdrobust.certify.bounds.graph import BoundGraph, Bounds, flat_args
from wdrobust.certify.bounds.interval import Box, Cot
from wdrobust.certify.bounds.region import Region

#: Segments with at most this many matrix entries d_in * d_out are materialised as dense matrices.
MATERIALISE_LIMIT = 1 << 22
#: Cotangent entries (basis rows x widest value) per chunk when materialising a matrix.
CHUNK_ENTRIES = 1 << 22


@dataclass
class Segment:
    """The affine nodes ``nodes`` (in graph order) applied to the value ``start``."""

    start: fx.Node
    nodes: list[fx.Node]

    @property
    def end(self) -> fx.Node:
        """The segment's last node (its output value)."""
        return self.nodes[-1]


def interval_args(graph: BoundGraph, node: fx.Node) -> list[fx.Node]:
    """The interval arguments of a node, in the order of ``flat_args`` (repeats kept)."""
    return [a for a in flat_args(node.args) if isinstance(a, fx.Node) and a in graph.interval]


def find_segments(graph: BoundGraph) -> dict[fx.Node, Segment]:
    """The graph's segments keyed by their last node (see the module docstring)."""
    by_end: dict[fx.Node, Segment] = {}
    for node in graph.nodes:
        rule = graph.rule_of.get(node)
        args = interval_args(graph, node)
        if rule is None or not rule.affine or len(args) != 1:
            continue
        u = args[0]
        users = [w for w in u.users if w in graph.interval]
        if u in by_end and u is not graph.output and len(users) == 1:
            seg = by_end.pop(u)
            seg.nodes.append(node)
        else:
            seg = Segment(u, [node])
        by_end[node] = seg
    return by_end


class Dense:
    """The graph's rules on the whole box X for inputs (1, *input_shape), and its segments' matrices."""

    def __init__(
        self, graph: BoundGraph, input_shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> None:
        self.graph = graph
        self.x1 = torch.full((1, *input_shape), 0.5, dtype=dtype, device=device)
        with torch.no_grad():
            self.bounds: Bounds = graph.bounds(
                Region.box(torch.zeros_like(self.x1), torch.ones_like(self.x1))
            )
        self.segments = find_segments(graph)
        self._matrices: dict[fx.Node, tuple[torch.Tensor, torch.Tensor] | None] = {}

    def size(self, node: fx.Node) -> int:
        """Number of entries of a value (one row)."""
        return self.bounds.boxes[node].lo[0].numel()

    def shape(self, node: fx.Node) -> tuple[int, ...]:
        """Shape of a value (one row, without the batch axis)."""
        return tuple(self.bounds.boxes[node].lo.shape[1:])

    def _through(self, seg: Segment, cot: Cot) -> Cot:
        """The cotangent pushed through the segment's rules (exact transposes, leafwise |A|^T radius)."""
        for node in reversed(seg.nodes):
            grads = self.bounds.rules[node].backward(cot)
            arg = interval_args(self.graph, node)[0]
            cot = next(g for a, g in zip(flat_args(node.args), grads, strict=False) if a is arg)
        return cot

    def matrix(self, seg: Segment) -> torch.Tensor | None:
        """M (d_out, d_in) of a segment when d_in d_out <= MATERIALISE_LIMIT (cached), else None."""
        mats = self._dense(seg)
        return None if mats is None else mats[0]

    def _dense(self, seg: Segment) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(M, |M|), or None for a segment too large to materialise."""
        if seg.end not in self._matrices:
            d_in, d_out = self.size(seg.start), self.size(seg.end)
            mats = None
            if d_in * d_out <= MATERIALISE_LIMIT:
                widest = max(self.size(n) for n in (seg.start, *seg.nodes))
                step = max(1, CHUNK_ENTRIES // widest)
                eye = torch.eye(d_out, dtype=self.x1.dtype, device=self.x1.device)
                rows = [
                    self._through(seg, Cot(eye[s : s + step].reshape(1, -1, *self.shape(seg.end)))).center
                    for s in range(0, d_out, step)
                ]
                m = torch.cat([r.reshape(-1, d_in) for r in rows])
                mats = (m, m.abs())
            self._matrices[seg.end] = mats
        return self._matrices[seg.end]

    def transpose(self, seg: Segment, cot: Cot) -> Cot:
        """M^T center +- |M|^T radius for a cotangent (B, C, *S_end) -> (B, C, *S_start)."""
        mats = self._dense(seg)
        if mats is None:
            return self._through(seg, cot)
        m, ma = mats
        b, c = cot.center.shape[:2]
        shape = (b, c, *self.shape(seg.start))
        center = (cot.center.reshape(b, c, -1) @ m).reshape(shape)
        radius = None if cot.radius is None else (cot.radius.reshape(b, c, -1) @ ma).reshape(shape)
        return Cot(center, radius)

    def offset(self, seg: Segment) -> torch.Tensor:
        """b (d_out,): the segment's nodes evaluated with their start value set to zero."""
        with torch.no_grad():
            env = self.graph.evaluate(self.x1)
            env[seg.start] = torch.zeros_like(env[seg.start])
            for node in seg.nodes:
                env[node] = self.graph._concrete(node, env)
        return env[seg.end].reshape(-1)

    def spectral_bound(self, seg: Segment) -> float:
        """>= ||M||_2 (see the module docstring)."""
        m = self.matrix(seg)
        if m is not None:
            return float(torch.linalg.matrix_norm(m, ord=2))
        ones = torch.ones((1, 1, *self.shape(seg.end)), dtype=self.x1.dtype, device=self.x1.device)
        col = float(self._through(seg, Cot(torch.zeros_like(ones), ones)).magnitude().max())
        return math.sqrt(col * self._row_sum(seg))

    def _row_sum(self, seg: Segment) -> float:
        """max_i (|A_k| ... |A_1| 1)_i: the leafwise ||M||_inf, from the radius of the box 0 +- 1 pushed
        forward through fresh instances of the segment's rules."""
        graph = self.graph
        with torch.no_grad():
            env = graph.evaluate(self.x1)
            ones = torch.ones((1, *self.shape(seg.start)), dtype=self.x1.dtype, device=self.x1.device)
            env[seg.start] = Box(-ones, ones)
            for node in seg.nodes:
                rule = graph.rule_of[node](graph._op(node), node.name)
                args = fx.node.map_arg(node.args, lambda n: env[n])
                kwargs = dict(fx.node.map_arg(node.kwargs, lambda n: env[n]))
                env[node] = rule.forward(*args, **kwargs)
        return float(env[seg.end].radius.max())
