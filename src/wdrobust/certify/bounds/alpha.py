"""Optimised lower slopes (alpha-CROWN) for the linear bounds of ``bounds.propagation``.

Every lower slope in the sound range of its activation (``slope_range``: [s, 1] for a ReLU-like sigma; for
any other sigma every slope is sound, its offset adapts, and the range of sigma' on the box is the useful
one) gives a sound relaxation on every sound pre-activation box, so a bound computed with any slopes is
sound and the slopes can be optimised freely (Xu et al. 2021). Two modes:

- ``output``: slopes per row, specification and neuron (B, C, *S_a) for every activation a on the output
  pass; the pre-activation boxes keep the ``Crown``'s values (one backward pass a step);
- ``full`` (auto_LiRPA's CROWN-Optimized): in addition every pre-activation value p outside the affine
  prefix that feeds an activation (a "start") has its own slopes for every activation a that p depends on:
  one set (2, *S_a) per row b and bounded neuron k of that row (a "pair"; the spec rows +e_k and -e_k), so
  (P_p, 2, *S_a) for the P_p pairs of p. The bounded neurons of a row are those whose relaxation is not
  exact there (unstable ReLUs, every neuron of a smooth sigma); a start is skipped (keeps its box) where a
  row's count times the path size exceeds START_COST. Each pair is one row of a ``Crown.restrict`` view
  (its row's region and boxes), so a pass costs the number of pairs, not rows x the union of their
  neurons. Each step recomputes the boxes of the starts in graph order inside autograd,

      hi_bk = min(hi0_bk, U(+e_k)),    lo_bk = max(lo0_bk, -U(-e_k))      (lo0, hi0: the Crown's boxes),

  every pass on the boxes of the earlier starts from the same step, so the objective (the sum of the output
  upper bounds) reaches every slope through the boxes. At the first step U equals the Crown's bound up to
  rounding, so the recomputed bound wins within a relative TIE (either is sound), else the slopes of the
  pairs where lo0/hi0 won the rounding would get no gradient. (Taking lo0, hi0 as the intersection of
  every earlier step's boxes instead, also sound, stalls the gradient of the pairs whose bound does not
  improve at every step: looser on the digits MLP.)

Other rules' relaxations (``Rule.params``: e.g. the McCormick interpolations of the bilinear products) have
parameters of their own, every value within their limits sound: in both modes the output pass optimises
them with the slopes (one set per row and specification, ``Crown.params``), the intermediate passes keep
the rules' defaults.

Projected Adam (learning rate lr, multiplied by DECAY after each step), the slopes clamped to their range
on the Crown's boxes after each step. Keep-best: each step's boxes and output bounds are sound, so per row
and specification the smallest output bound over the steps is returned. ``full`` then fixes the starts'
boxes at the intersection of every step's and polishes the output pass's slopes there: POLISH x steps
more output-only steps (one backward pass each, cheap next to a full step) from step size POLISH_LR, and
a last pass; it writes those boxes back into the Crown's (sound for any later pass, e.g. branch and
bound's). Early stop (``stop``): once every bound of every row is below stop (0 for margins: every row
verified). Rows are optimised in chunks of at most CHUNK_ENTRIES coefficient entries (Adam is
elementwise, so the chunks do not interact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import fx

from wdrobust.certify.bounds.activations import Activation, bound_activation
from wdrobust.certify.bounds.interval import Box

if TYPE_CHECKING:
    from wdrobust.certify.bounds.propagation import Crown

#: Optimisation modes.
MODES = ("output", "full")
#: Default Adam step size and its decay factor per step (auto_LiRPA's defaults).
LR, DECAY = 0.5, 0.98
#: Coefficient entries (rows x specs x widest value) per chunk of rows.
CHUNK_ENTRIES = 1 << 22
#: Relative tolerance under which a recomputed intermediate bound is preferred to the reference one.
TIE = 1e-9
#: Largest (bounded neurons) x (path size) per row of a start optimised in ``full`` mode.
START_COST = 1 << 25
#: ``full``: output-only steps on the tightened boxes (a fraction of the steps) and their first step size.
#: Measured (20 steps, one thread): the mean worst-margin bound of 8 samples went 4.436875 -> 4.436660
#: (digits MLP, eps 0.1) and 0.478786 -> 0.477739 (Fashion MLP 784-256-256-128, eps 0.03), a few % more
#: time; first step sizes 0.1 and 0.2 gave less on both, 0.5 less on the Fashion MLP.
POLISH, POLISH_LR = 0.5, 0.05

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
    """A pre-activation value recomputed every step, whether only its unstable neurons are bounded
    (relu_like: every activation reading it is ReLU-like) and the activations that it depends on."""

    node: fx.Node
    relu_like: bool
    acts: list[fx.Node]

    def need(self, crown: Crown) -> torch.Tensor:
        """(B, n) bool: the neurons to bound on each row (not exact there: unstable for relu_like)."""
        box = crown.bounds.boxes[self.node]
        lo, hi = box.lo.flatten(1), box.hi.flatten(1)
        return ((lo < 0) & (hi > 0)) if self.relu_like else (hi > lo)


def starts(crown: Crown, mode: str) -> list[Start]:
    """The starts of ``full`` mode in graph order (none for ``output``): the values CROWN tightens that
    feed an activation, where no row's pass costs more than START_COST."""
    if mode == "output":
        return []
    fed = {crown.pre(a) for a in crown.acts}
    out = []
    for node, relu_like in crown._targets().items():
        if node not in fed:
            continue
        start = Start(node, relu_like, [a for a in crown.acts if a in _ancestors(node)])
        count = int(start.need(crown).sum(dim=1).max())
        if count > 0 and count * _dense_entries(crown, node) <= START_COST:
            out.append(start)
    return out


def step_entries(crown: Crown, specs: int, mode: str = "full") -> int:
    """The coefficient entries one step of ``optimise_upper`` passes back over all of the Crown's rows, a
    measure of its cost (its time per entry is about constant across networks): per start, two spec rows
    (+e_k, -e_k) per neuron to bound times its dense pass's entries, plus specs rows per region row of the
    output pass."""
    rows = crown.x0.shape[0]
    out = rows * specs * _dense_entries(crown, crown.graph.output)
    for s in starts(crown, mode):
        out += 2 * int(s.need(crown).sum()) * _dense_entries(crown, s.node)
    return out


def _dense_entries(crown: Crown, node: fx.Node) -> int:
    """Coefficient entries of one spec row of a dense pass from node back to the input: the sum of the
    per-row sizes of the bounded values up to node (full mode's passes are dense)."""
    order = crown.graph.nodes
    boxes = crown.bounds.boxes
    return sum(boxes[n].lo[0].numel() for n in order[: order.index(node) + 1] if n in boxes)


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


def _chunks(crown: Crown, todo: list[Start], specs: int) -> list[torch.Tensor]:
    """Consecutive row chunks whose passes hold at most CHUNK_ENTRIES coefficient entries (a row costs
    the widest value times its spec rows: specs, or 2 per neuron bounded for a start)."""
    widest = max(v.lo[0].numel() for v in crown.bounds.boxes.values())
    cost = torch.full((crown.x0.shape[0],), specs, dtype=torch.int64)
    for s in todo:
        cost = torch.maximum(cost, 2 * s.need(crown).sum(dim=1).cpu())
    out, first, total = [], 0, 0
    for row, c in enumerate((cost * widest).tolist()):
        if total + c > CHUNK_ENTRIES and row > first:
            out.append(torch.arange(first, row, device=crown.x0.device))
            first, total = row, 0
        total += c
    return [*out, torch.arange(first, cost.numel(), device=crown.x0.device)]


def optimise_upper(
    crown: Crown,
    spec: torch.Tensor,
    steps: int,
    lr: float = LR,
    mode: str = "output",
    stop: float | None = None,
) -> torch.Tensor:
    """Upper bounds (B, C) of spec . output(x) over the Crown's regions with optimised lower slopes; spec
    (B, C, *S_out). See the module docstring; the bound with the Crown's slopes is one of the candidates.
    ``full``: the Crown's boxes of the starts become the intersection of every step's boxes (sound,
    tighter) and its cached relaxations are dropped (branch and bound starts from them)."""
    if mode not in MODES:
        raise ValueError(f"alpha must be one of {', '.join(MODES)}, got {mode!r}")
    with torch.no_grad():
        best = crown.upper(crown.graph.output, spec)
        if steps <= 0:
            return best
        for node, rule in crown.bounds.rules.items():  # the relaxations that stay fixed, on the fixed boxes
            if rule.relaxed:
                crown.generic_relaxation(node)
        for act in crown.acts:
            crown.relaxation(act)
        if not crown.acts and not _rule_params(crown, 1):
            return best
    todo = starts(crown, mode)
    for rows in _chunks(crown, todo, spec.shape[1]):
        search = _Search(crown.restrict(rows), spec[rows], todo)
        bound, tight = search.run(steps, lr, stop)
        best[rows] = torch.minimum(best[rows], bound)
        for node, box in tight.items():  # the chunk's rows of the start's box (batch axis first)
            whole = crown.bounds.boxes[node]
            lo, hi = whole.lo.clone(), whole.hi.clone()
            lo[rows], hi[rows] = box.lo, box.hi
            crown.bounds.boxes[node] = Box(lo, hi, whole.batch_dim)
    if todo:
        crown._relax.clear()  # the relaxations on the written boxes are recomputed on use
    return best


def _tighter(ref: torch.Tensor, new: torch.Tensor, side: float) -> torch.Tensor:
    """Of two sound bounds (side 1: upper, -1: lower), new where it is tighter than ref or looser by at
    most TIE (1 + |ref|), else ref: at the first step both are the same CROWN bound up to rounding, and
    ref winning such a tie would stop the gradient of new (both are sound, so either choice is)."""
    return torch.where(side * (new - ref) <= TIE * (1 + ref.abs()), new, ref)


class _Pairs:
    """The bounded (row, neuron) pairs of one start on a chunk: a Crown restricted to the pair's rows
    (one view row per pair), the spec rows (P, 2, *S) +e_k, -e_k and their slopes (P, 2, *S_a)."""

    def __init__(self, crown: Crown, start: Start) -> None:
        self.rows, self.idx = start.need(crown).nonzero(as_tuple=True)
        self.view = crown.restrict(self.rows)
        shape = crown.bounds.boxes[start.node].lo.shape[1:]
        n = self.rows.numel()
        eye = crown.x0.new_zeros((n, math.prod(shape)))
        eye[torch.arange(n), self.idx] = 1.0
        self.spec = torch.stack([eye, -eye], dim=1).reshape(n, 2, *shape)
        self.slopes = _slopes(self.view, start.acts, 2)


def _slopes(crown: Crown, acts: list[fx.Node], count: int) -> Slopes:
    """Leaf tensors (R, count, *S_a) for the activations acts, from the Crown's slopes."""
    out = {}
    for a in acts:
        init = crown.relaxation(a).a_lo.detach().unsqueeze(1)
        out[a] = init.expand(init.shape[0], count, *init.shape[2:]).clone().requires_grad_(True)
    return out


def _rule_params(crown: Crown, specs: int) -> dict[fx.Node, tuple[torch.Tensor, float, float]]:
    """{node: (leaf tensor (B, specs, ...), lower, upper limit)}: the optimisable parameters of the
    non-activation rules (``Rule.params``) on the Crown's relaxations, at their initial values."""
    out = {}
    for node, rule in crown.bounds.rules.items():
        got = rule.params(crown.generic_relaxation(node), specs) if rule.relaxed else None
        if got is not None:
            init, lo, hi = got
            out[node] = (init.detach().clone().requires_grad_(True), lo, hi)
    return out


class _Search:
    """The optimisation of one chunk of rows: a Crown restricted to them (its boxes are replaced by the
    differentiable ones during the passes), the output specification and the starts' pairs."""

    def __init__(self, crown: Crown, spec: torch.Tensor, todo: list[Start]) -> None:
        self.crown, self.spec = crown, spec
        self.todo = [s for s in todo if s.need(crown).any()]  # the starts with neurons to bound here
        self.fixed = {s.node: crown.bounds.boxes[s.node] for s in self.todo}
        self.range = {}
        for a in crown.acts:
            lo, hi = slope_range(crown.bounds.rules[a].activation, crown.bounds.boxes[crown.pre(a)])
            self.range[a] = (lo.unsqueeze(1), hi.unsqueeze(1))
        self.out = _slopes(crown, crown.acts, spec.shape[1])
        self.rule_params = _rule_params(crown, spec.shape[1])
        self.pairs = [_Pairs(crown, s) for s in self.todo]

    def _pass(self, reference: dict[fx.Node, Box]) -> tuple[torch.Tensor, dict[fx.Node, Box]]:
        """(output upper bounds (R, C), the starts' boxes) with the current slopes, each start's box the
        reference box with its bounded neurons tightened by CROWN."""
        boxes: dict[fx.Node, Box] = {}
        for s, pairs in zip(self.todo, self.pairs, strict=True):
            view = pairs.view
            for node, box in boxes.items():  # the earlier starts' boxes of this step, one row per pair
                view.bounds.boxes[node] = Box(box.lo[pairs.rows], box.hi[pairs.rows], box.batch_dim)
            view.slopes = pairs.slopes
            up = view.upper(s.node, pairs.spec)
            view.slopes = None
            ref = reference[s.node]
            lo, hi = ref.lo.flatten(1).clone(), ref.hi.flatten(1).clone()
            at = (pairs.rows, pairs.idx)
            lo[at] = _tighter(lo[at], -up[:, 1], -1.0)
            hi[at] = _tighter(hi[at], up[:, 0], 1.0)
            hi = torch.maximum(lo, hi)
            boxes[s.node] = Box(lo.reshape(ref.lo.shape), hi.reshape(ref.lo.shape), ref.batch_dim)
        crown = self.crown
        crown.bounds.boxes.update(boxes)
        crown.slopes = self.out
        crown.params = {node: p for node, (p, _, _) in self.rule_params.items()}
        bound = crown.upper(crown.graph.output, self.spec)
        crown.slopes = crown.params = None
        crown.bounds.boxes.update(self.fixed)
        return bound, boxes

    def _project(self) -> None:
        """Clamp every slope and rule parameter into its range."""
        for a, p in self.out.items():
            p.copy_(torch.maximum(torch.minimum(p, self.range[a][1]), self.range[a][0]))
        for p, lo, hi in self.rule_params.values():
            p.clamp_(lo, hi)
        for pairs in self.pairs:
            for a, p in pairs.slopes.items():
                lo, hi = (t[pairs.rows] for t in self.range[a])
                p.copy_(torch.maximum(torch.minimum(p, hi), lo))

    def run(self, steps: int, lr: float, stop: float | None) -> tuple[torch.Tensor, dict[fx.Node, Box]]:
        """The smallest upper bounds (R, C) over the steps (and, ``full``, the polishing steps and the last
        pass), and the starts' boxes: the intersection of the Crown's and of every step's."""
        params = [p for slopes in (self.out, *(q.slopes for q in self.pairs)) for p in slopes.values()]
        params += [p for p, _, _ in self.rule_params.values()]
        best = torch.full(self.spec.shape[:2], torch.inf, dtype=self.spec.dtype, device=self.spec.device)
        best, tight, stopped = self._descend(params, steps, lr, stop, best, dict(self.fixed))
        if stopped or not self.todo:
            return best, tight
        self.fixed, self.todo, self.pairs = tight, [], []  # the output pass alone, on the tightened boxes
        self.crown.bounds.boxes.update(tight)
        polish = math.ceil(POLISH * steps)
        output = [*self.out.values(), *(p for p, _, _ in self.rule_params.values())]
        best, _, stopped = self._descend(output, polish, POLISH_LR, stop, best, tight)
        if stopped:
            return best, tight
        with torch.no_grad():
            return torch.minimum(best, self._pass(tight)[0]), tight

    def _descend(
        self,
        params: list[torch.Tensor],
        steps: int,
        lr: float,
        stop: float | None,
        best: torch.Tensor,
        tight: dict[fx.Node, Box],
    ) -> tuple[torch.Tensor, dict[fx.Node, Box], bool]:
        """Projected Adam steps on params from step size lr: (the best bounds (R, C) so far, the starts'
        boxes intersected with every step's, whether every bound went below stop)."""
        opt = torch.optim.Adam(params, lr=lr)
        tight = dict(tight)
        for _ in range(steps):
            with torch.enable_grad():
                bound, boxes = self._pass(self.fixed)
                # only the slopes' gradients (never the model's weights, which may require grad)
                grads = torch.autograd.grad(bound.sum(), params, allow_unused=True)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p.grad = g
                best = torch.minimum(best, bound.detach())
                for n, b in boxes.items():
                    tight[n] = tight[n].intersect(b.lo.detach(), b.hi.detach())
                if stop is not None and bool((best < stop).all()):
                    return best, tight, True
                opt.step()
                for group in opt.param_groups:
                    group["lr"] *= DECAY
                self._project()
        return best, tight, False
