"""Branch and bound: complete verification of a property (``property``) over its region.

Property (``BabProperty``): on every x of the region every group of rows s_m = spec_m . f + offset_m has
a row < 0; ``verify`` is the margin case (every z_j - z_y < 0 on B(x0, r) cap [0,1]^d, ``solve`` the
general one. Domains (``domains``) are bounded in batches by the engine (``engine``), on the rows some
domain of the batch still needs (rows of refuted groups keep the parent's bounds); a row is proved on a
domain when its bound U_m + slack < 0 (slack = FLOAT32_SLACK (1 + max |z(x0)|), as ``crown``: the
float32 network's logits differ from the float64 ones by rounding), and a child keeps the smaller of its
own and its parent's bound (it is a subset). Domains with every group refuted are closed; the others are
searched for a counterexample (PGD on max_g min_m s_m from the maximiser of the worst row's linear bound,
re-checked in float64; only while the attacks' gradient evaluations, starts x steps, are at most
ATTACK_SHARE of the bounding's, domains x (1 + beta_steps) x rows: a count, so the schedule does not depend
on the machine's speed) and split. Before the search, PGD from x0 and `restarts` random points of the
ball, ROOT_STEPS times longer; then (ReLU splits) the root's pre-activation boxes by alpha-CROWN through
every layer (``engine.root_bounds``, at most ROOT_SHARE of the time left):

- ``relu``: on the neuron of best BaBSR-like score (``branching``), or on its m <= `splits` best neurons
  at once (2^m children) while the queue is shorter than a batch, so that the first batches fill up; the
  pre-activation boxes after the split are bounded again only every `rebound` splits (kept from the parent
  otherwise, ``BabOptions``); a domain
  with no unstable neuron left cannot be split further: on linf / l1 balls of ReLU MLPs the network is
  affine there and an LP over the domain's constraints bounds it exactly (``leaves``); leaves it does not
  close stay open;
- ``input`` (few input dimensions): into its 2^d half cubes, bounded over B_inf(c, h) cap [0,1]^d, a superset
  of the domain's part of the ball for every norm; cubes that miss the region are dropped.

Worst domains (largest open bound) are processed first, `batch` at a time, in batches of one kind: the
worst domain's, re-bounding boxes (depth a multiple of `rebound`) or keeping them, which cost several
times more or less per domain. A batch holds fewer when the time left would not fit a full one at the
cost predicted from the last batches of its kind (``_batch_size``, in FIT_SHARE of the time left; none
starts that would not fit) or when fewer than a batch remain of the `max_bounded` domains. Given the
seed, every step depends on the time only through this batch size and the root's alpha steps: a search
that the time limit does not cut (time_limit = inf and max_bounded set) is deterministic. Result:
``verified`` (every leaf closed: a proof), ``falsified`` (a re-checked counterexample), or ``unknown``
(time, domain limits, or unsplittable leaves), always with the best sound bound so far: per row, the max
over all leaves of their bounds.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from wdrobust._progress import stage
from wdrobust.certify.bab.attack import search
from wdrobust.certify.bab.branching import choose_neurons
from wdrobust.certify.bab.domains import Domains
from wdrobust.certify.bab.engine import DomainBounds, bound_domains, root_bounds, split_nodes
from wdrobust.certify.bab.leaves import NORMS as LP_NORMS
from wdrobust.certify.bab.leaves import close_leaves
from wdrobust.certify.bab.property import BabProperty
from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.bounds.propagation import INTERMEDIATE
from wdrobust.certify.bounds.region import Region
from wdrobust.certify.relu_mip import ReluNet
from wdrobust.threat import lp_norm, steepest

#: Relative outward slack of every bound against the float32 evaluation of the network (as ``crown``).
FLOAT32_SLACK = 1e-5
#: The root attack (x0 and `restarts` random starts) runs this many times attack_steps.
ROOT_STEPS = 5
#: The domain attacks run while their gradient evaluations are at most this share of the bounding's.
ATTACK_SHARE = 0.25
#: Bytes of inherited slopes that the open domains may hold (``BabOptions.slopes``).
SLOPE_MEMORY = 2 << 30
#: Most share of the time left that the root's alpha-CROWN may take.
ROOT_SHARE = 0.3
#: A batch is sized to fit in this share of the time left at its predicted cost: batches of one kind
#: still differ by about 25 % in cost per domain (how early their domains leave the beta steps).
FIT_SHARE = 0.75
MODES = ("auto", "relu", "input")


@dataclass(frozen=True)
class BabOptions:
    """time_limit (s per property); batch (domains per engine call); mode (``relu``, ``input``, or
    ``auto``: input splits when d <= input_dims); intermediate / alpha_steps / beta_steps (engine options:
    beta_steps optimises the split multipliers, ReLU splits only; slopes: with them the output pass's
    lower ReLU slopes, each domain starting from its parent's, open domains kept at most SLOPE_MEMORY /
    their bytes per domain); root_alpha_steps: alpha-CROWN steps through
    every layer for the root's pre-activation boxes (ReLU splits; 0: plain CROWN boxes);
    attack_steps (PGD steps per restart), restarts (domains attacked per batch); seed; max_domains
    (open domains kept at most, the search stops beyond); max_bounded (domains bounded at most, None: no
    limit); splits (most neurons split at once per domain while the queue is shorter than a batch);
    rebound: a domain's pre-activation boxes after its last split node are bounded again only when its
    depth (ReLU splits since the root) is a multiple of rebound, else every box is kept from the parent
    (sound: the parent's boxes hold on the child, the split constraint enters through the split neuron's
    box and the multipliers); 1: always."""

    time_limit: float = 10.0
    batch: int = 256
    mode: str = "auto"
    input_dims: int = 4
    intermediate: str = "crown"
    alpha_steps: int = 0
    beta_steps: int = 10
    slopes: bool = True
    root_alpha_steps: int = 10
    attack_steps: int = 10
    restarts: int = 8
    seed: int = 0
    max_domains: int = 200_000
    max_bounded: int | None = None
    splits: int = 3
    rebound: int = 4

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"bab: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.intermediate not in INTERMEDIATE:
            raise ValueError(f"bab: intermediate must be one of {', '.join(INTERMEDIATE)}")
        if not self.time_limit > 0:
            raise ValueError(f"bab: time_limit must be positive, got {self.time_limit}")
        for key in ("batch", "input_dims", "restarts", "max_domains", "splits", "max_bounded", "rebound"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"bab: {key} must be >= 1, got {getattr(self, key)}")


@dataclass
class BabResult:
    """status: ``verified``, ``falsified`` or ``unknown``; upper (K-1,): sound upper bounds of max over the
    region of each margin row (classes j != y in increasing order; slack included); counterexample (*S)
    float64 when falsified; domains: domains bounded; seconds."""

    status: str
    upper: np.ndarray
    counterexample: torch.Tensor | None
    domains: int
    seconds: float


def verify(
    graph: BoundGraph, x0: torch.Tensor, y: int, r: float, norm: str, options: BabOptions = BabOptions()
) -> BabResult:
    """Branch and bound on the robustness of label y on B(x0, r) cap [0,1]^d (``BabProperty.margin``);
    graph: a float64 BoundGraph, x0 (*S) float64. Rows: the margins z_j - z_y, j != y increasing."""
    k = int(graph.gm(x0[None]).shape[1])
    return solve(graph, BabProperty.margin(x0, y, r, norm, k), options)


def solve(graph: BoundGraph, prop: BabProperty, options: BabOptions = BabOptions()) -> BabResult:
    """Branch and bound on a property (``property``) over its region; graph: a float64 BoundGraph, the
    property in float64. See the module docstring."""
    start = time.perf_counter()
    gen = torch.Generator(device="cpu").manual_seed(options.seed)
    reg = prop.region
    x1, dev = reg.x0, reg.x0.device
    x0 = x1[0]
    slack = FLOAT32_SLACK * (1 + float(graph.gm(x1).detach().abs().max()))
    inputs = options.mode == "input" or (options.mode == "auto" and x0.numel() <= options.input_dims)
    nodes = [] if inputs else split_nodes(graph, x1)
    width = [graph.evaluate(x1)[n].numel() for n in nodes]
    c = prop.spec.shape[0]
    free = [torch.full((1, w), torch.inf, dtype=x0.dtype, device=dev) for w in width]
    queue = Domains(
        x1.clone(),
        reg.r.clone(),
        [-t for t in free],
        free,
        torch.full((1, c), torch.inf, dtype=x0.dtype, device=dev),
        torch.full((1,), -1, dtype=torch.long, device=dev),
        torch.zeros(1, dtype=torch.long, device=dev),
    )
    most = options.max_domains
    if options.slopes and nodes and options.beta_steps > 0:
        queue.slopes = [torch.full((1, c, w), torch.nan, device=dev) for w in width]
        most = min(most, max(1, SLOPE_MEMORY // (4 * c * sum(width))))
    closed = torch.full((c,), -torch.inf, dtype=x0.dtype, device=dev)  # max bound over closed leaves
    stuck: list[Domains] = []
    bounded = 0
    spent = {"attack": 0, "bound": 0}  # gradient evaluations (module docstring)
    # per kind of batch (its domains re-bound their boxes or not): (domains, seconds) of its last two sizes
    history: dict[bool, list[tuple[int, float]]] = {True: [], False: []}
    previous: tuple[bool, int, float] | None = None

    def attack(starts: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor | None:
        return search(graph.gm, prop, starts, lo, hi, options.attack_steps)

    m = options.restarts
    noise = reg.r * (2 * torch.rand((m, *x0.shape), generator=gen, dtype=x0.dtype) - 1).to(dev)
    starts = torch.cat([x1, x1 + noise])
    box = (reg.lo.expand_as(starts), reg.hi.expand_as(starts))
    cex = search(graph.gm, prop, starts, *box, ROOT_STEPS * options.attack_steps)
    if cex is None and nodes and options.root_alpha_steps > 0:
        root, queue.lo, queue.hi = root_bounds(
            graph,
            reg,
            prop.spec[None],
            nodes,
            options.intermediate,
            options.root_alpha_steps,
            ROOT_SHARE * (options.time_limit - (time.perf_counter() - start)),
        )
        queue.upper = root + prop.offset + slack
        if bool(prop.refuted(queue.upper).all()):  # proved at the root
            closed, queue = queue.upper[0], queue.take(torch.zeros(1, dtype=torch.bool, device=dev))
    status = "unknown"
    with stage("bab") as show:
        while cex is None and len(queue) and len(queue) <= most:
            show(f"bab: {bounded} domains bounded, {len(queue)} open")
            now = time.perf_counter()
            if previous is not None:  # the last iteration's kind, domains and seconds, all work included
                kind, n, began = previous
                kept = [h for h in history[kind] if h[0] != n][-1:]
                history[kind] = [*kept, (n, now - began)]
            order, kind, count = _order(queue, prop, options.rebound)
            fit = history[kind] or history[not kind]  # a kept-box batch costs less than a re-bounding one
            left = FIT_SHARE * (options.time_limit - (now - start))
            size = min(_batch_size(options.batch, left, fit), count)
            if options.max_bounded is not None:
                size = min(size, options.max_bounded - bounded)
            if size < 1:
                break
            batch, queue = queue.take(order[:size]), queue.take(order[size:])
            n = len(batch)
            previous = (kind, n, now)
            cols = prop.open_rows(batch.upper).any(dim=0).nonzero().flatten()  # rows some domain needs
            bounds = bound_domains(
                graph,
                _regions(batch, prop, inputs),
                prop.spec[cols].expand(n, -1, -1),
                nodes,
                batch.lo,
                batch.hi,
                torch.searchsorted(cols, prop.worst(batch.upper)[1]),
                _final(batch, len(nodes), options.rebound),
                intermediate=options.intermediate,
                alpha_steps=options.alpha_steps,
                beta_steps=0 if inputs else options.beta_steps,
                slopes=[t[:, cols] for t in batch.slopes] if batch.slopes else None,
                proved=functools.partial(_proved, prop=prop, parent=batch.upper, cols=cols, slack=slack),
            )
            spent["bound"] += n * (1 + (0 if inputs else options.beta_steps)) * cols.numel()
            bounded += n
            batch = batch.with_bounds(bounds.lo, bounds.hi)
            for mine, new in zip(batch.slopes, bounds.slopes, strict=False):
                mine[:, cols] = new.to(mine.dtype)
            batch.upper = _merged(batch.upper, bounds.upper, prop, cols, slack)
            done = prop.refuted(batch.upper).all(dim=1)
            if done.any():
                closed = torch.maximum(closed, batch.upper[done].amax(dim=0))
            keep = (~done).nonzero().flatten()
            if keep.numel() == 0:
                continue
            batch = batch.take(keep)
            if spent["attack"] <= ATTACK_SHARE * spent["bound"]:
                cex = _attack_batch(batch, bounds, keep, inputs, prop, options, attack)
                spent["attack"] += min(options.restarts, len(batch)) * options.attack_steps
            if cex is not None:
                queue = Domains.cat([queue, batch])  # its bounds stay part of the anytime bound
                break
            if inputs:
                kids = _meeting(batch.split_input(), prop)
            else:
                m = _splits(options.batch - len(queue), len(batch), options.splits)
                node, neuron, found = choose_neurons(batch.lo, batch.hi, [t[keep] for t in bounds.lam], m)
                ok = found > 0
                if not ok.all():
                    decided = _close(batch.take(~ok), graph, prop, slack)
                    shut = prop.refuted(decided.upper).all(dim=1)
                    if shut.any():
                        closed = torch.maximum(closed, decided.upper[shut].amax(dim=0))
                    if not shut.all():
                        stuck.append(decided.take(~shut))
                full = found >= node.shape[1]
                kids = Domains.cat(
                    [
                        batch.take(full).split_relu(node[full], neuron[full]),
                        batch.take(ok & ~full).split_relu(node[ok & ~full, :1], neuron[ok & ~full, :1]),
                    ]
                )
            queue = Domains.cat([queue, kids])
    leaves = Domains.cat([queue, *stuck]) if (len(queue) or stuck) else None
    upper = closed if leaves is None else torch.maximum(closed, leaves.upper.amax(dim=0))
    if cex is not None:
        status = "falsified"
    elif leaves is None:
        status = "verified"
    return BabResult(status, upper.cpu().numpy(), cex, bounded, time.perf_counter() - start)


def _merged(
    parent: torch.Tensor, upper: torch.Tensor, prop: BabProperty, cols: torch.Tensor, slack: float
) -> torch.Tensor:
    """(D, C): the domains' earlier bounds parent (D, C) of the rows, with the rows cols replaced by their
    minimum with the new bounds upper (D, C') of spec_cols . f (no offset, no slack) plus offset and slack."""
    rows = parent.clone()
    rows[:, cols] = torch.minimum(rows[:, cols], upper + prop.offset[cols] + slack)
    return rows


def _proved(
    upper: torch.Tensor, prop: BabProperty, parent: torch.Tensor, cols: torch.Tensor, slack: float
) -> torch.Tensor:
    """(D,) bool: the domains with every group refuted by ``_merged`` bounds (the beta steps' early stop)."""
    return prop.refuted(_merged(parent, upper, prop, cols, slack)).all(dim=1)


def _final(batch: Domains, count: int, rebound: int) -> torch.Tensor:
    """(D,) long: per domain the last split node whose boxes are final (``bound_domains``' split): its
    last split's node, or every node (count - 1) when its depth is no multiple of rebound."""
    return torch.where(batch.depth % rebound == 0, batch.split, torch.full_like(batch.split, count - 1))


def _splits(room: int, n: int, most: int) -> int:
    """Neurons to split per domain of a batch of n: m = floor(log2(room / n)) (the 2^m n children fill
    the next batches' room), between 1 and most."""
    m = 1
    while m < most and n * 2 ** (m + 1) <= room:
        m += 1
    return m


def _order(queue: Domains, prop: BabProperty, rebound: int) -> tuple[torch.Tensor, bool, int]:
    """(order (D,), kind, count): the queue's domains worst first (largest open bound), those of the
    worst domain's kind before the others; kind: whether they bound their boxes again (depth a multiple
    of rebound); count: how many of that kind there are (the next batch takes only those)."""
    order = torch.argsort(prop.worst(queue.upper)[0], descending=True)
    redo = queue.depth[order] % rebound == 0
    kind = bool(redo[0])
    return torch.cat([order[redo == kind], order[redo != kind]]), kind, int((redo == kind).sum())


def _batch_size(batch: int, left: float, history: list[tuple[int, float]]) -> int:
    """Domains to bound next (0: none fits): the most, up to batch, whose predicted cost fits in the time
    left (s), from the last batches of the batch's kind, (n_i domains, t_i s), up to two of different
    sizes (full before the first). Up to the largest measured size n_m the cost is a + b n fitted to two
    batches (b > 0), beyond it (or with one batch, or b <= 0) it grows in proportion, t_m n / n_m (the
    fixed cost a >= 0 makes this an overestimate)."""
    if left <= 0:
        return 0
    if not history:
        return batch
    n_max, t_max = max(history)
    if t_max > left and len(history) == 2:
        (n1, t1), (n2, t2) = history
        b = (t2 - t1) / (n2 - n1)
        if b > 0:
            return int(max(0.0, min(n_max, (left - max(t2 - b * n2, 0.0)) / b)))
    return int(max(0.0, min(batch, left * n_max / t_max)))


def _regions(batch: Domains, prop: BabProperty, inputs: bool) -> Region:
    """The domains' input regions (D rows): the property's region for ReLU splits; for input splits the
    cube B_inf(c_b, h_b) cut to the region's box (for l2 / l1 a superset of the cube's part of the ball)."""
    reg, n = prop.region, len(batch)
    if not inputs:
        return Region(*(t.expand(n, *t.shape[1:]) for t in (reg.lo, reg.hi, reg.x0, reg.r)), reg.norm)
    h = batch.half.reshape(-1, *([1] * (batch.centre.dim() - 1)))
    return Region.box(torch.maximum(batch.centre - h, reg.lo), torch.minimum(batch.centre + h, reg.hi))


def _attack_batch(
    batch: Domains,
    bounds: DomainBounds,
    keep: torch.Tensor,
    inputs: bool,
    prop: BabProperty,
    options: BabOptions,
    attack: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor | None],
) -> torch.Tensor | None:
    """PGD in the `restarts` open domains of the batch with the largest bounds (batch is sorted worst
    first): relu domains start at the maximiser over the ball of the recorded row's linear bound, input
    domains at their cube's centre, clamped to cube cap the region's box."""
    reg = prop.region
    top = torch.arange(min(options.restarts, len(batch)), device=reg.x0.device)
    if inputs:
        cube = _regions(batch.take(top), prop, inputs)
        return attack(torch.minimum(torch.maximum(batch.centre[top], cube.lo), cube.hi), cube.lo, cube.hi)
    direction = bounds.direction[keep][top]
    starts = reg.x0 + reg.r[0] * steepest(direction, reg.norm)
    return attack(starts, reg.lo.expand_as(starts), reg.hi.expand_as(starts))


def _close(leaves: Domains, graph: BoundGraph, prop: BabProperty, slack: float) -> Domains:
    """The fully decided leaves with their open rows bounded by the LP (``leaves``; linf / l1 ReLU MLPs,
    others unchanged). With one row per group the LPs of a leaf stop at its first row that stays >= 0."""
    reg = prop.region
    net = _relu_net(graph, tuple(reg.x0.shape[1:])) if reg.norm in LP_NORMS else None
    if net is None:
        return leaves
    stop = -slack if prop.groups == prop.spec.shape[0] else np.inf
    open_rows = prop.open_rows(leaves.upper)
    upper = close_leaves(
        net, reg, leaves.lo, leaves.hi, prop.spec, prop.offset, leaves.upper, open_rows, stop
    )
    leaves.upper = torch.minimum(leaves.upper, upper + slack)
    return leaves


_NETS: weakref.WeakKeyDictionary[BoundGraph, ReluNet | None] = weakref.WeakKeyDictionary()


def _relu_net(graph: BoundGraph, shape: tuple[int, ...]) -> ReluNet | None:
    """The graph's dense layers for the leaf LPs (cached per graph), None when it is no ReLU MLP."""
    if graph not in _NETS:
        try:
            _NETS[graph] = ReluNet.from_model(graph.gm, shape)
        except ValueError:
            _NETS[graph] = None
    return _NETS[graph]


def _meeting(kids: Domains, prop: BabProperty) -> Domains:
    """The cubes that meet the region: their part of the region's box is not empty and, for l2 / l1, its
    nearest point to x0 is in the ball (for linf the box is the region); the others hold no point of it."""
    reg, d = prop.region, len(kids)
    h = kids.half.reshape(-1, *([1] * (kids.centre.dim() - 1)))
    lo, hi = torch.maximum(kids.centre - h, reg.lo), torch.minimum(kids.centre + h, reg.hi)
    keep = (lo <= hi).reshape(d, -1).all(dim=1)
    if reg.norm != "linf":
        near = torch.minimum(torch.maximum(reg.x0, lo), hi)
        keep &= lp_norm((near - reg.x0).reshape(d, -1), reg.norm) <= reg.r[0]
    return kids.take(keep)
