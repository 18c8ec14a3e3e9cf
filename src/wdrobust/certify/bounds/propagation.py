"""Linear bound propagation (CROWN / DeepPoly) over a traced BoundGraph.

For a batch of regions X_b (``region.Region``: a box [lo_b, hi_b] cap a ball B(x0_b, r_b); the threat
model's B(x0_b, r_b) cap [0, 1]^d or a general box) and specification rows C_b (B, C, *S_v) at a graph
value v, the backward pass finds A (B, C, *S_in) and bias (B, C) with

    C_b . v(x) <= A_b . x + bias_b      for every x in X_b,

node by node from v back to the input:
- an affine node y = W u + w0 maps the coefficients Lambda of y to Lambda W for u (the rule's exact
  transpose, ``Rule.backward`` on a point cotangent) and adds Lambda . w0 to the bias, w0 = y(0) being the
  node evaluated with its interval arguments set to zero;
- an activation y = sigma(u) with pre-activation bounds [l, u] and relaxation a_lo u + b_lo <= y <=
  a_up u + b_up (``relax``) maps Lambda to Lambda+ a_up + Lambda- a_lo and adds Lambda+ b_up + Lambda- b_lo;
- another nonlinear rule maps Lambda by its own relaxation (``Rule.relax``, ``linear_backward``); outside
  CROWN-IBP the relaxation may bound linear functions of its arguments by backward passes of their own
  (LayerNorm: the centred row and its variance; softmax: the differences of the entries of a row).
Concretisation over X_b (``concretize``): linf: the box [lo, hi] exactly (A+ . hi + A- . lo); l1: the box
cap the ball exactly (a fractional knapsack over the coordinates); l2: the smaller of the box bound and the
ball bound A . x0 + r ||A||_2 (both sound). Lower bounds are -upper(-C).

Pre-activation bounds ("intermediate"): ``ibp`` keeps the interval boxes of BoundGraph.bounds (CROWN-IBP);
``crown`` tightens every pre-activation outside the affine prefix (whose boxes are already exact for the
box and tightened by the ball) with its own CROWN pass, in graph order, intersected with the interval box,
bounding only the neurons whose relaxation is not exact (unstable ReLUs; every neuron of a smooth
activation); ``auto`` does so for the rows where the pass costs at most AUTO_COST coefficient entries
per row and value (neurons to bound x the entries of one neuron's pass) and keeps the interval boxes
elsewhere, naming those values in ``Crown.fallback``. Neurons at the end of a chain of convolutions and
activations are bounded over their receptive fields (``bounds.patches``: the same bounds, a cost per
neuron of its windows instead of the whole maps).
Optimised lower slopes (alpha-CROWN): ``optimise_upper`` runs a few projected Adam steps on the lower slopes
of the activations, and on the parameters of other rules' relaxations (``Rule.params``, ``Crown.params``), to
minimise the sum of the output upper bounds (every slope is sound, so every step's bound is; the smallest
per row is kept).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import torch
from torch import fx, nn

from wdrobust._progress import stage
from wdrobust.certify.bounds.activations import ActivationRule
from wdrobust.certify.bounds.alpha import optimise_upper
from wdrobust.certify.bounds.graph import BoundGraph, Bounds, flat_args
from wdrobust.certify.bounds.interval import Box, Cot
from wdrobust.certify.bounds.patches import GROUP_ENTRIES, conv_chain, patch_backward
from wdrobust.certify.bounds.region import Region
from wdrobust.certify.bounds.relax import Relaxation, relax
from wdrobust.certify.bounds.rule import unsupported
from wdrobust.threat import dual_of, lp_norm

#: Modes of the pre-activation bounds.
INTERMEDIATE = ("ibp", "crown", "auto")
#: ``auto``: largest (bounded neurons) x (coefficient entries of one neuron's pass, summed over the values it
#: visits: their windows on a receptive-field pass, their sizes on a dense one) per row and value.
AUTO_COST = 1 << 24
#: Coefficient entries (rows x specs x widest value) per chunk of a backward pass.
CHUNK_ENTRIES = 1 << 23
#: Largest ratio of the neurons a row chunk bounds (rows x the union of their neurons) to those its rows need.
UNION_WASTE = 1.25
#: Row chunks whose pass costs at most this (rows x union x widest value) are not split for waste: measured
#: on the digits MLP, splitting such chunks cost more in calls than the waste saved (crown certificate +25 %).
SMALL_PASS = 1 << 22


def flat_dot(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A . v per row and spec: the sum over the value axes of a (B, C, *S) times v (B, *S) or (1, *S),
    shape (B, C), as a matrix product."""
    flat = a.flatten(2)
    if v.shape[0] == 1 and a.shape[0] != 1:
        return flat @ v.reshape(-1)
    return torch.bmm(flat, v.reshape(v.shape[0], -1, 1)).squeeze(2)


def _row_chunks(need: torch.Tensor, widest: int) -> list[torch.Tensor]:
    """Chunks of the rows of need (B, n) (the neurons each row must bound; a chunk bounds the union of its
    rows' neurons on every row), rows taken by increasing count: a row joins the chunk while its
    coefficient entries (rows x 2 x union x widest) stay within CHUNK_ENTRIES and rows x union stays within
    UNION_WASTE times the sum of the rows' own counts, or rows x union x widest within SMALL_PASS."""
    counts = need.sum(dim=1)
    chunks: list[list[int]] = []
    union, total = need[0], 0
    for row in torch.argsort(counts).tolist():
        joined, count = union | need[row], int(counts[row])
        size, rows = int(joined.sum()), len(chunks[-1]) + 1 if chunks else 0
        cheap = rows * size * widest <= SMALL_PASS or rows * size <= UNION_WASTE * (total + count)
        fits = rows * 2 * max(size, 1) * widest <= CHUNK_ENTRIES and cheap
        if chunks and fits:
            chunks[-1].append(row)
            union, total = joined, total + count
        else:
            chunks.append([row])
            union, total = need[row], count
    return [torch.tensor(c, device=need.device) for c in chunks]


def check_linear_rules(graph: BoundGraph) -> None:
    """ValueError naming the first operation of the graph without a linear bound rule (anything that is
    neither affine, nor an elementwise activation, nor a rule with a linear relaxation)."""
    for node, rule in graph.rule_of.items():
        if not rule.affine and not rule.relaxed and not issubclass(rule, ActivationRule):
            what = (
                type(graph.gm.get_submodule(node.target)).__name__ if node.op == "call_module" else node.name
            )
            raise unsupported(what, node.name, "no linear bound rule (crown)")


def _lift(t: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """A per-row tensor (B, *S) as (B, 1, *S) to broadcast over the specs of lam; (B, C, *S) as is."""
    return t if t.dim() == lam.dim() else t.unsqueeze(1)


def _spec_dot(lam: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """sum over the value axes of lam (B, C, *S) times t (B, 1 or C, *S) -> (B, C)."""
    if t.shape[1] == 1:
        return flat_dot(lam, t.squeeze(1))
    return (lam * t).flatten(2).sum(dim=2)


def l1_ball_upper(
    a: torch.Tensor, x0: torch.Tensor, r: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
) -> torch.Tensor:
    """max of A_b . v over {v in [lo_b, hi_b] : ||v - x0_b||_1 <= r_b} (x0_b in the box), exactly;
    a (B, C, *S), x0, lo, hi (B, *S), r (B,) -> (B, C).

    A fractional knapsack per row and spec: coordinates by |A_k| descending, each moved from x0_k to the
    box end in the sign of A_k (room_k) until the budget r_b is spent.
    """
    flat = a.flatten(2)
    b, d = flat.shape[0], flat.shape[2]
    room = torch.where(flat > 0, (hi - x0).reshape(b, 1, d), (x0 - lo).reshape(b, 1, d))
    gain, order = flat.abs().sort(dim=2, descending=True)
    room = room.gather(2, order)
    spent = torch.minimum((r.reshape(b, 1, 1) - (room.cumsum(dim=2) - room)).clamp(min=0), room)
    return flat_dot(a, x0) + (gain * spent).sum(dim=2)


def concretize(a: torch.Tensor, bias: torch.Tensor, region: Region) -> torch.Tensor:
    """max over the regions X_b of A_b . x + bias_b, soundly; a (B, C, *S), bias (B, C) -> (B, C).

    linf: exact over the box [lo, hi] (the region); l1: exact over the box cap the ball
    (``l1_ball_upper``); l2: the smaller of the box bound and the ball bound A . x0 + r ||A||_2."""
    lo, hi, x0, r, norm = region.lo, region.hi, region.x0, region.r, region.norm
    if norm == "l1":
        return bias + l1_ball_upper(a, x0, r, lo, hi)
    box = bias + flat_dot(a, lo) + flat_dot(a.clamp(min=0), hi - lo)
    if norm == "linf":
        return box
    ball = bias + flat_dot(a, x0) + r[:, None] * lp_norm(a, dual_of(norm), batch_dims=2)
    return torch.minimum(box, ball)


class Crown:
    """Linear bounds over the regions of one batch of rows; see the module docstring.

    graph: the model's BoundGraph (compute in float64 for certificates: trace a float64 copy);
    region: the rows' input regions in the graph's dtype; intermediate: one of INTERMEDIATE;
    known: sound boxes of some values on the same regions (``BoundGraph.bounds``), e.g. given big-M bounds.
    """

    def __init__(
        self,
        graph: BoundGraph,
        region: Region,
        intermediate: str = "auto",
        known: dict[fx.Node, Box] | None = None,
    ) -> None:
        if intermediate not in INTERMEDIATE:
            raise ValueError(f"intermediate must be one of {', '.join(INTERMEDIATE)}, got {intermediate!r}")
        self.graph, self.region, self.x0 = graph, region, region.x0
        self.intermediate = intermediate
        with torch.no_grad():
            self.bounds: Bounds = graph.bounds(region, known=known)
            self.offset = self._offsets(self.x0[:1])
        self.acts = [n for n in graph.nodes if isinstance(self.bounds.rules.get(n), ActivationRule)]
        check_linear_rules(graph)
        self._relax: dict[fx.Node, Any] = {}
        #: ``auto``: the names of the values that kept their interval boxes on some rows (pass too costly)
        self.fallback: list[str] = []
        self.slopes: dict[fx.Node, torch.Tensor] | None = None
        #: alpha-CROWN: optimisable parameters of non-activation rules (``Rule.params``) on a pass, by node
        self.params: dict[fx.Node, torch.Tensor] | None = None
        if intermediate != "ibp":
            with torch.no_grad():
                self._tighten(intermediate)

    def _offsets(self, x1: torch.Tensor) -> dict[fx.Node, torch.Tensor]:
        """w0 = y(0) (1, *S) for every affine node y = W u + w0: the node evaluated with its interval
        arguments set to zero (the constants, e.g. shapes, from a concrete pass at one row x1)."""
        env = self.graph.evaluate(x1)
        out = {}
        for node, rule in self.bounds.rules.items():
            if rule.affine:
                args = [a for a in node.all_input_nodes if a in self.graph.interval]
                zeros = {a: torch.zeros_like(env[a]) for a in args}
                value = self.graph._concrete(node, {**env, **zeros})
                out[node] = value.movedim(self.bounds.boxes[node].batch_dim, 0)  # batch-first like boxes
        return out

    # -- relaxations ---------------------------------------------------------------------------------
    def pre(self, act: fx.Node) -> fx.Node:
        """The pre-activation value (the interval argument) of an activation node."""
        return next(a for a in act.args if isinstance(a, fx.Node) and a in self.graph.interval)

    def relaxation(self, act: fx.Node) -> Relaxation:
        """The relaxation of an activation node on its (final) pre-activation box."""
        if self.slopes is not None and act in self.slopes:  # per specification row: (B, C, *S)
            box = self.bounds.boxes[self.pre(act)]
            lo, hi = box.lo.unsqueeze(1), box.hi.unsqueeze(1)
            return relax(self.bounds.rules[act].activation, lo, hi, self.slopes[act])
        if act not in self._relax:
            box = self.bounds.boxes[self.pre(act)]
            self._relax[act] = relax(self.bounds.rules[act].activation, box.lo, box.hi)
        return self._relax[act]

    def generic_relaxation(self, node: fx.Node) -> Any:
        """The relaxation of a non-activation rule on the current boxes of its arguments (cached); outside
        CROWN-IBP the rule may also bound linear functions of its arguments by backward passes."""
        if node not in self._relax:
            args = flat_args(node.args)
            inputs = [self.bounds.boxes.get(a) if isinstance(a, fx.Node) else None for a in args]
            upper = None if self.intermediate == "ibp" else (lambda k, spec: self.upper(args[k], spec))
            self._relax[node] = self.bounds.rules[node].relax(inputs, upper)
        return self._relax[node]

    # -- the backward pass -----------------------------------------------------------------------------
    def backward(
        self, start: fx.Node, spec: torch.Tensor, rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(A (B', C, *S_in), bias (B', C)) with spec . start(x) <= A . x + bias on the rows' regions.

        spec: (B', C, *S_start); rows: indices of the batch rows that spec belongs to (default all).
        """
        sel = (lambda t: t) if rows is None else (lambda t: t[rows])
        lams: dict[fx.Node, torch.Tensor] = {start: spec}
        bias = spec.new_zeros(spec.shape[:2])
        order = self.graph.nodes
        for node in reversed(order[: order.index(start) + 1]):
            lam = lams.pop(node, None)
            if lam is None:
                continue
            if node is self.graph.input:
                return lam, bias
            rule = self.bounds.rules[node]
            if isinstance(rule, ActivationRule):
                # Lambda+ (a_up, b_up) + Lambda- (a_lo, b_lo) = Lambda (a_lo, b_lo) + Lambda+ (a_up - a_lo,
                # b_up - b_lo)
                rel = self.relaxation(node)
                pos = lam.clamp(min=0)
                a_lo, b_lo, a_up, b_up = (
                    _lift(sel(t), lam) for t in (rel.a_lo, rel.b_lo, rel.a_up, rel.b_up)
                )
                bias = bias + _spec_dot(lam, b_lo) + _spec_dot(pos, b_up - b_lo)
                self._push(lams, self.pre(node), lam * a_lo + pos * (a_up - a_lo))
                continue
            if rule.relaxed:
                rel = self.generic_relaxation(node)
                if rows is not None:
                    fields = {f.name: getattr(rel, f.name)[rows] for f in dataclasses.fields(rel)}
                    rel = dataclasses.replace(rel, **fields)
                param = None if self.params is None else self.params.get(node)
                if param is None:
                    coefs, b = rule.linear_backward(lam, rel)
                else:
                    coefs, b = rule.linear_backward(lam, rel, sel(param))
                bias = bias + b
            else:
                bias = bias + flat_dot(lam, self.offset[node])
                coefs = tuple(None if g is None else g.center for g in rule.backward(Cot(lam)))
            for arg, g in zip(flat_args(node.args), coefs, strict=False):
                if g is not None and isinstance(arg, fx.Node) and arg in self.graph.interval:
                    self._push(lams, arg, g)
        x = self.x0
        return spec.new_zeros((*spec.shape[:2], *x.shape[1:])), bias  # the output does not depend on x

    @staticmethod
    def _push(lams: dict[fx.Node, torch.Tensor], node: fx.Node, lam: torch.Tensor) -> None:
        lams[node] = lams[node] + lam if node in lams else lam

    def upper(self, start: fx.Node, spec: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Upper bounds (B', C) of spec . start(x) over the rows' regions."""
        a, bias = self.backward(start, spec, rows)
        return concretize(a, bias, self.region if rows is None else self.region[rows])

    # -- intermediate bounds ---------------------------------------------------------------------------
    def _tighten(self, mode: str) -> None:
        """CROWN bounds of the pre-activations outside the affine prefix, in graph order, row chunk by row
        chunk: each chunk bounds the neurons that are not exact on any of its rows (``auto``: only when
        their number times the cost of one neuron's pass (``_plan``) is at most AUTO_COST, else the chunk
        keeps its interval boxes and the value is named in ``fallback``)."""
        widest = max(v.lo[0].numel() for v in self.bounds.boxes.values())
        targets = self._targets()
        with stage("layer") as show:
            for i, (pre, relu_like) in enumerate(targets.items()):
                show(f"layer {i + 1}/{len(targets)}")
                self._tighten_one(pre, relu_like, mode, widest)

    def _tighten_one(self, pre: fx.Node, relu_like: bool, mode: str, widest: int) -> None:
        """``_tighten`` of the pre-activation pre (``relu_like``: only its unstable neurons), by row chunks
        (``_row_chunks``) that bound the union of their rows' neurons; widest: the largest number of entries
        of a value per row (sizes the row chunks)."""
        box = self.bounds.boxes[pre]
        lo, hi = box.lo.flatten(1).clone(), box.hi.flatten(1).clone()
        need = ((lo < 0) & (hi > 0)) if relu_like else (hi > lo)
        limit = AUTO_COST // sum(self._plan(pre)[1]) if mode == "auto" else lo.shape[1]
        for rows in _row_chunks(need, widest):
            idx = need[rows].any(dim=0).nonzero().flatten()
            if idx.numel() > limit and pre.name not in self.fallback:
                self.fallback.append(pre.name)
            if idx.numel() == 0 or idx.numel() > limit:
                continue
            new_lo, new_hi = self._bound_neurons(pre, idx, rows)
            lo[rows[:, None], idx] = torch.maximum(lo[rows[:, None], idx], new_lo)
            hi[rows[:, None], idx] = torch.minimum(hi[rows[:, None], idx], new_hi)
        self.bounds.boxes[pre] = Box(
            lo.reshape(box.lo.shape), torch.maximum(lo, hi).reshape(box.lo.shape), box.batch_dim
        )

    def _targets(self) -> dict[fx.Node, bool]:
        """The inputs of the nonlinear nodes outside the affine prefix, in graph order, each with True when
        its only nonlinear users are ReLU-like activations (then only its unstable neurons are bounded)."""
        targets: dict[fx.Node, bool] = {}
        for node in self.graph.nodes:
            rule = self.bounds.rules.get(node)
            if isinstance(rule, ActivationRule):
                args, relu = [self.pre(node)], rule.activation.relu_slope is not None
            elif rule is not None and rule.relaxed:
                args = [
                    a for a in flat_args(node.args) if isinstance(a, fx.Node) and a in self.graph.interval
                ]
                relu = False
            else:
                continue
            for a in args:
                if a not in self.graph.prefix:
                    targets[a] = targets.get(a, True) and relu
        index = {n: i for i, n in enumerate(self.graph.nodes)}
        return dict(sorted(targets.items(), key=lambda kv: index[kv[0]]))

    def _bound_neurons(
        self, node: fx.Node, idx: torch.Tensor, rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(lower, upper) bounds (R, n) of the flat entries idx (n,) of node on the given rows (R,), in
        groups of neurons that keep every coefficient tensor within CHUNK_ENTRIES (GROUP_ENTRIES for the
        receptive-field pass): by the pass ``_plan`` picks (same bounds either way)."""
        chain, sizes = self._plan(node)
        shape = self.bounds.boxes[node].lo.shape[1:]
        group = max(1, (GROUP_ENTRIES if chain else CHUNK_ENTRIES) // (2 * rows.numel() * max(sizes)))
        los, his = [], []
        for part in idx.split(group):
            n = part.numel()
            if chain:
                up = self._patch_upper(chain, part, rows)
            else:
                eye = torch.zeros((n, math.prod(shape)), dtype=self.x0.dtype, device=self.x0.device)
                eye[torch.arange(n), part] = 1.0
                both = torch.cat([eye, -eye]).reshape(2 * n, *shape)
                up = self.upper(node, both.unsqueeze(0).expand(rows.numel(), *both.shape), rows)
            los.append(-up[:, n:])
            his.append(up[:, :n])
        return torch.cat(los, dim=1), torch.cat(his, dim=1)

    def _plan(self, node: fx.Node) -> tuple[list[fx.Node] | None, list[int]]:
        """(chain, entries): the pass that bounds node's neurons and the coefficient entries of one spec row
        on each value it visits. The receptive-field pass (``bounds.patches``) when node ends a chain of
        convolutions and activations whose windows (channels x k x k on each value, from node back to
        the input) are all smaller than the widest map; else (None, the sizes of the values up to node),
        the dense pass."""
        chain = self._chain(node)
        if chain:
            sizes, size = [], 1
            for n in chain:
                sizes.append(self.bounds.boxes[n].lo.shape[1] * size * size)
                if n.op == "call_module" and isinstance(
                    conv := self.graph.gm.get_submodule(n.target), nn.Conv2d
                ):
                    size = (size - 1) * conv.stride[0] + conv.kernel_size[0]
            sizes.append(self.x0.shape[1] * size * size)
            if max(sizes) < max(v.lo[0].numel() for v in self.bounds.boxes.values()):
                return chain, sizes
        order = self.graph.nodes
        upto = order[: order.index(node) + 1]
        return None, [self.bounds.boxes[n].lo[0].numel() for n in upto if n in self.bounds.boxes]

    def _chain(self, node: fx.Node) -> list[fx.Node] | None:
        """The convolutional chain from node back to the input (``patches.conv_chain``), None when there is
        none or node is not an image-shaped value."""
        if self.bounds.boxes[node].lo.dim() != 4 or self.bounds.boxes[node].batch_dim != 0:
            return None
        return conv_chain(node, self.bounds.rules, self.graph.gm.get_submodule)

    def _patch_upper(self, chain: list[fx.Node], idx: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Upper bounds (R, 2n) of (+e_idx, -e_idx) . start(x) by the receptive-field backward pass."""
        shapes = {n: tuple(self.bounds.boxes[n].lo.shape[1:]) for n in chain}
        shapes[self.graph.input] = tuple(self.x0.shape[1:])
        lam, bias, win, where = patch_backward(
            chain, self.bounds.rules, self.relaxation, shapes, idx, rows, self.x0.dtype
        )
        n, r = idx.numel(), rows.numel()
        # the rows' regions restricted to each window (zero outside the map, where lam is zero): the box's
        # and the ball's projections onto the window's coordinates, which contain the region's points
        reg = self.region[rows]
        window = Region(
            *(win.read(t, where).flatten(0, 1) for t in (reg.lo, reg.hi, reg.x0)),
            reg.r.repeat_interleave(n),
            reg.norm,
        )
        up = concretize(lam, bias, window).reshape(r, n, 2)
        return torch.cat([up[:, :, 0], up[:, :, 1]], dim=1)

    # -- optimised slopes (alpha-CROWN) ----------------------------------------------------------------
    def restrict(self, rows: torch.Tensor) -> Crown:
        """The same bounds on the given batch rows (R,) only: region, boxes and cached relaxations sliced,
        nothing mutable shared (``bounds.alpha`` optimises chunks of rows on such views)."""
        view = copy.copy(self)
        view.region, view.x0 = self.region[rows], self.x0[rows]
        view.bounds = Bounds(
            {n: Box(b.lo[rows], b.hi[rows], b.batch_dim) for n, b in self.bounds.boxes.items()},
            self.bounds.rules,
        )
        view._relax = {
            n: dataclasses.replace(r, **{f.name: getattr(r, f.name)[rows] for f in dataclasses.fields(r)})
            for n, r in self._relax.items()
        }
        view.slopes = view.params = None
        return view

    def optimise_upper(
        self, spec: torch.Tensor, steps: int = 20, alpha: str = "output", stop: float | None = None
    ) -> torch.Tensor:
        """Upper bounds (B, C) of spec . output(x) with lower slopes optimised by projected Adam steps
        (``bounds.alpha``: alpha "output" optimises the output pass's slopes, "full" also those of every
        intermediate bound); never above the bound with the Crown's slopes. stop: end early once every
        bound is below it."""
        return optimise_upper(self, spec, steps, mode=alpha, stop=stop)


def margin_bounds(
    graph: BoundGraph,
    region: Region,
    spec: torch.Tensor,
    *,
    intermediate: str = "auto",
    alpha_steps: int = 0,
    alpha: str = "output",
    alpha_stop: float | None = None,
    fallback: list[str] | None = None,
    known: dict[fx.Node, Box] | None = None,
    tightened: dict[fx.Node, Box] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(U (B, C), A (B, C, *S), bias (B, C)): U_bc >= max over the row's region of spec_bc . f(x), and the
    linear bound spec_bc . f(x) <= A_bc . x + bias_bc it comes from (plain CROWN slopes; with alpha_steps
    the returned U is the optimised bound, which is never larger: ``bounds.alpha`` with mode alpha, "output"
    or "full", and early stop alpha_stop).

    region: B rows (``Region``), spec (B, C, K); everything in the graph's dtype. fallback: a list that
    receives the names of the values ``auto`` kept as interval boxes (``Crown.fallback``) not yet in it.
    known: sound boxes (B, *S) of some values on the same regions (``Crown``), e.g. those of larger regions
    containing these; tightened: a dict that receives the final boxes (B, *S) of the values CROWN tightens
    (the inputs of the nonlinear nodes outside the affine prefix), to serve as ``known`` for sub-regions.
    """
    crown = Crown(graph, region, intermediate, known)
    if fallback is not None:
        fallback.extend(name for name in crown.fallback if name not in fallback)
    with torch.no_grad():
        a, bias = crown.backward(graph.output, spec)
        upper = concretize(a, bias, region)
    if alpha_steps > 0:
        upper = torch.minimum(upper, crown.optimise_upper(spec, alpha_steps, alpha, alpha_stop))
    if torch.isnan(upper).any():
        raise ValueError("crown: the bounds contain NaN (check the model for non-finite weights)")
    if tightened is not None:
        tightened.update({node: crown.bounds.boxes[node] for node in crown._targets()})
    return upper, a, bias
