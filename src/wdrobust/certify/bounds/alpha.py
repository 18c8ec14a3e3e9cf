"""Optimised lower slopes (alpha-CROWN) for the linear bounds of ``bounds.crown``.

Every lower slope in the sound range of its activation (``slope_range``: [s, 1] for a ReLU-like sigma; for
any other sigma every slope is sound, its offset adapts, and the range of sigma' on the box is the useful
one) gives a sound relaxation on every sound pre-activation box, so a bound computed with any slopes is
sound and the slopes can be optimised freely (Xu et al. 2021). Two modes:

- ``output``: slopes per row, specification and neuron (B, C, *S_a) for every activation a on the output
  pass; the pre-activation boxes keep the ``Crown``'s values (one backward pass a step);
- ``full`` (auto_LiRPA's CROWN-Optimized): in addition every pre-activation value p outside the affine
  prefix that feeds an activation (a "start") has its own slopes (B, 2n_p, *S_a) for every activation a
  that p depends on, one per bounded neuron k of p and side (the rows +e_k and -e_k). The bounded neurons
  are those whose relaxation is not exact on some row (unstable ReLUs, every neuron of a smooth sigma),
  where their number times the path size is at most ``crown.AUTO_COST`` (other starts keep their boxes).
  Each step recomputes the boxes of the starts in graph order inside autograd,

      hi_pk = min(hi0_pk, U(+e_k)),    lo_pk = max(lo0_pk, -U(-e_k))      (lo0, hi0: the Crown's boxes),

  every pass on the boxes of the earlier starts from the same step, so the objective (the sum of the output
  upper bounds) reaches every slope through the boxes.

Projected Adam (learning rate lr, multiplied by DECAY after each step), the slopes clamped to their range
on the Crown's boxes after each step. Keep-best: each step's boxes and output bounds are sound, so per row
and specification the smallest output bound over the steps is returned; ``full`` ends with one more pass
with the last slopes on the intersection of every step's boxes. Early stop (``stop``): once every bound of
every row is below stop (0 for margins: every row verified). Rows are optimised in chunks of at most
CHUNK_ENTRIES coefficient entries (Adam is elementwise, so the chunks do not interact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import fx

from wdrobust.certify.bounds.activations import Activation, bound_activation
from wdrobust.certify.bounds.interval import Box

if TYPE_CHECKING:
    from wdrobust.certify.bounds.crown import Crown

#: Optimisation modes.
MODES = ("output", "full")
#: Default Adam step size and its decay factor per step (auto_LiRPA's defaults).
LR, DECAY = 0.5, 0.98
#: Coefficient entries (rows x specs x widest value) per chunk of rows.
CHUNK_ENTRIES = 1 << 22
#: Largest (bounded neurons) x (path size) per row of a start optimised in ``full`` mode.
START_COST = 1 << 25

Slopes = dict[fx.Node, torch.Tensor]


def slope_range(act: Activation, box: Box) -> tuple[torch.Tensor, torch.Tensor]:
    """Range (lo, hi) (B, *S) of useful lower slopes on the box: [s, 1] for a ReLU-like sigma, the range of
    sigma' on the box otherwise (any slope is sound for those; the offset adapts)."""
    if act.relu_slope is not None:
        return torch.full_like(box.lo, act.relu_slope), torch.ones_like(box.lo)
    _, d_lo, d_hi = bound_activation(act, box)
    return d_lo, d_hi


@dataclass
class Start:
    """A pre-activation value whose bounded neurons idx (n,) (flat) are recomputed every step, and the
    activations acts that it depends on (those with slopes for its passes)."""

    node: fx.Node
    idx: torch.Tensor
    acts: list[fx.Node]


def starts(crown: Crown, mode: str) -> list[Start]:
    """The starts of ``full`` mode over all of the Crown's rows, in graph order (none for ``output``)."""
    if mode == "output":
        return []
    fed = {crown.pre(a) for a in crown.acts}
    out = []
    for node, relu_like in crown._targets().items():
        if node not in fed:
            continue
        box = crown.bounds.boxes[node]
        lo, hi = box.lo.flatten(1), box.hi.flatten(1)
        need = ((lo < 0) & (hi > 0)) if relu_like else (hi > lo)
        idx = need.any(dim=0).nonzero().flatten()
        if idx.numel() > 0 and idx.numel() * crown._path_size(node) <= START_COST:
            ancestors = _ancestors(node)
            out.append(Start(node, idx, [a for a in crown.acts if a in ancestors]))
    return out


def _ancestors(node: fx.Node) -> set[fx.Node]:
    """Every node that node's value is computed from."""
    seen: set[fx.Node] = set()
    todo = list(node.all_input_nodes)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(n.all_input_nodes)
    return seen


def optimise_upper(
    crown: Crown,
    spec: torch.Tensor,
    steps: int,
    lr: float = LR,
    mode: str = "output",
    stop: float | None = None,
) -> torch.Tensor:
    """Upper bounds (B, C) of spec . output(x) over the Crown's regions with optimised lower slopes; spec
    (B, C, *S_out). See the module docstring; the bound with the Crown's slopes is one of the candidates."""
    if mode not in MODES:
        raise ValueError(f"alpha must be one of {', '.join(MODES)}, got {mode!r}")
    with torch.no_grad():
        best = crown.upper(crown.graph.output, spec)
        if steps <= 0 or not crown.acts:
            return best
        for node, rule in crown.bounds.rules.items():  # the relaxations that stay fixed, on the fixed boxes
            if rule.relaxed:
                crown.generic_relaxation(node)
        for act in crown.acts:
            crown.relaxation(act)
    todo = starts(crown, mode)
    widest = max(v.lo[0].numel() for v in crown.bounds.boxes.values())
    specs = max([spec.shape[1], *(2 * s.idx.numel() for s in todo)])
    step = max(1, CHUNK_ENTRIES // (specs * widest))
    for first in range(0, spec.shape[0], step):
        rows = torch.arange(first, min(first + step, spec.shape[0]), device=spec.device)
        search = _Search(crown.restrict(rows), spec[rows], todo)
        best[rows] = torch.minimum(best[rows], search.run(steps, lr, stop))
    return best


class _Search:
    """The optimisation of one chunk of rows: a Crown restricted to them (its boxes are replaced by the
    differentiable ones during the passes), the output specification and the starts."""

    def __init__(self, crown: Crown, spec: torch.Tensor, todo: list[Start]) -> None:
        self.crown, self.spec, self.todo = crown, spec, todo
        self.fixed = {s.node: crown.bounds.boxes[s.node] for s in todo}
        self.range = {}
        for a in crown.acts:
            lo, hi = slope_range(crown.bounds.rules[a].activation, crown.bounds.boxes[crown.pre(a)])
            self.range[a] = (lo.unsqueeze(1), hi.unsqueeze(1))
        self.out = self._slopes(crown.acts, spec.shape[1])
        self.inner = [self._slopes(s.acts, 2 * s.idx.numel()) for s in todo]

    def _slopes(self, acts: list[fx.Node], count: int) -> Slopes:
        """Leaf tensors (R, count, *S_a) for the activations acts, from the Crown's slopes."""
        out = {}
        for a in acts:
            init = self.crown.relaxation(a).a_lo.detach().unsqueeze(1)
            out[a] = init.expand(init.shape[0], count, *init.shape[2:]).clone().requires_grad_(True)
        return out

    def _pass(self, reference: dict[fx.Node, Box]) -> tuple[torch.Tensor, dict[fx.Node, Box]]:
        """(output upper bounds (R, C), the starts' boxes) with the current slopes, each start's box the
        reference box with its bounded neurons tightened by CROWN."""
        crown, boxes = self.crown, {}
        for s, slopes in zip(self.todo, self.inner, strict=True):
            ref = reference[s.node]
            n, shape = s.idx.numel(), ref.lo.shape[1:]
            eye = ref.lo.new_zeros((n, ref.lo[0].numel()))
            eye[torch.arange(n), s.idx] = 1.0
            both = torch.cat([eye, -eye]).reshape(2 * n, *shape)
            crown.slopes = slopes
            up = crown.upper(s.node, both.unsqueeze(0).expand(ref.lo.shape[0], *both.shape))
            lo, hi = ref.lo.flatten(1).clone(), ref.hi.flatten(1).clone()
            lo[:, s.idx] = torch.maximum(lo[:, s.idx], -up[:, n:])
            hi[:, s.idx] = torch.minimum(hi[:, s.idx], up[:, :n])
            hi = torch.maximum(lo, hi)
            boxes[s.node] = Box(lo.reshape(ref.lo.shape), hi.reshape(ref.lo.shape), ref.batch_dim)
            crown.bounds.boxes[s.node] = boxes[s.node]
        crown.slopes = self.out
        bound = crown.upper(crown.graph.output, self.spec)
        crown.slopes = None
        crown.bounds.boxes.update(self.fixed)
        return bound, boxes

    def _project(self) -> None:
        """Clamp every slope into its range."""
        for slopes in (self.out, *self.inner):
            for a, p in slopes.items():
                lo, hi = self.range[a]
                p.copy_(torch.maximum(torch.minimum(p, hi), lo))

    def run(self, steps: int, lr: float, stop: float | None) -> torch.Tensor:
        """The smallest upper bounds (R, C) over the steps (and the last pass, ``full``)."""
        params = [p for slopes in (self.out, *self.inner) for p in slopes.values()]
        opt = torch.optim.Adam(params, lr=lr)
        best = torch.full(self.spec.shape[:2], torch.inf, dtype=self.spec.dtype, device=self.spec.device)
        tight = dict(self.fixed)
        for _ in range(steps):
            with torch.enable_grad():
                bound, boxes = self._pass(self.fixed)
                opt.zero_grad()
                bound.sum().backward()
            with torch.no_grad():
                best = torch.minimum(best, bound.detach())
                tight = {n: tight[n].intersect(b.lo.detach(), b.hi.detach()) for n, b in boxes.items()}
                if stop is not None and bool((best < stop).all()):
                    return best
                opt.step()
                for group in opt.param_groups:
                    group["lr"] *= DECAY
                self._project()
        with torch.no_grad():
            return torch.minimum(best, self._pass(tight)[0])
