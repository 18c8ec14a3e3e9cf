"""The one place where branch and bound calls the bound engine (``certify.bounds.propagation``).

``bound_domains`` bounds a batch of domains D_b = R_b cap {lo_b <= z(x) <= hi_b}, R_b an input region (a
``Region`` row: box cap ball), z the pre-activations of the ReLU-like activations (``domains``), for
specification rows spec_b (C, K): U_bc >= max over D_b of spec_bc . f(x). The boxes enter as the engine's
``known`` boxes of z: every point of D_b lies in them, so the engine's bounds (intersected with them) and
CROWN over them are sound on D_b (its linear bound holds on D_b, and concretising over the larger R_b only
loosens it). The boxes carry the parent's final bounds and the split constraints (lo := max(lo, 0) or hi :=
min(hi, 0)); they tighten the relaxations of the split neuron and every layer after it, the layers before it
keep the parent's bounds (sound; the splits reach them, and the input, only through the multipliers below),
so they are not bounded again (``split``).

Split multipliers (beta-CROWN, Wang et al. 2021): every decided neuron (lo >= 0: z >= 0 on D_b, sign s =
+1; hi <= 0: s = -1) satisfies s z(x) >= 0 on D_b, so for any beta >= 0
max_{D_b} spec . f <= max_{R_b} spec . f(x) + sum_k beta_k s_k z_k(x); the term enters the backward pass
as beta s added to the coefficients of z, and beta (per domain, row and neuron) is optimised by projected
Adam (``beta_steps``). Every beta >= 0 gives a sound bound; this is how the splits reach the layers
before them and the input.

Empty domains: the engine's bounds of z are sound on D_b, so a bound that contradicts the domain's own box
(a lower bound above hi_b or an upper bound below lo_b on some neuron) proves D_b empty; its margin bounds
are -inf (nothing to bound).

For branching it also records, per domain, the backward coefficient lambda (n,) of each split activation's
output in the output pass of one chosen specification row (``rows``), and the final pre-activation boxes: a
subclass of ``Crown`` that watches ``_push``. This is the hook to replace after engine changes.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import fx

from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.bounds.activations import ActivationRule
from wdrobust.certify.bounds.alpha import optimise_upper, slope_range, step_entries
from wdrobust.certify.bounds.interval import Box
from wdrobust.certify.bounds.propagation import Crown, concretize
from wdrobust.certify.bounds.region import Region

#: Adam step sizes of the split multipliers beta and of the lower ReLU slopes alpha.
BETA_LR = 0.1
ALPHA_LR = 0.1
#: Adam's moment decay rates (beta1, beta2).
ADAM = (0.9, 0.999)
#: Seconds per coefficient entry of an alpha-CROWN step through every layer (``alpha.step_entries``), before
#: the first root run of the process measures it (measured 4e-8 to 9e-8 on one thread here, on the
#: mnistfc MLPs and the oval21 CNNs alike; the guess errs on the slow side).
ENTRY_SECONDS = 1.5e-7
#: The measured seconds per entry, updated by every root run that takes alpha steps (module docstring).
_CLOCK = {"entry": ENTRY_SECONDS}


def split_nodes(graph: BoundGraph, x0: torch.Tensor) -> list[fx.Node]:
    """The pre-activation nodes of the ReLU-like activations (sigma(z) = max(z, 0) + s min(z, 0), which
    a sign split makes exact), in graph order; x0 (1, *S) is any input row (to read the rules)."""
    rules = graph.bounds(Region.ball(x0, x0.new_zeros(1), "linf"), tighten=False).rules
    out = []
    for node in graph.nodes:
        rule = rules.get(node)
        if isinstance(rule, ActivationRule) and rule.activation.relu_slope is not None:
            pre = next(a for a in node.args if isinstance(a, fx.Node) and a in graph.interval)
            if pre not in out:
                out.append(pre)
    return out


@dataclass
class DomainBounds:
    """Bounds of a batch of D domains: upper (D, C) margin upper bounds; lo, hi: per split node (D, n)
    flat final pre-activation bounds; lam: per split node (D, n) backward coefficients of the activation
    output in the pass of the recorded specification row; direction (D, *S): that row's input
    coefficients A (its linear bound A . x + bias is largest where x moves along A); slopes: per split
    node (D, C, n) the optimised lower slopes of the output pass (empty when not optimised)."""

    upper: torch.Tensor
    lo: list[torch.Tensor]
    hi: list[torch.Tensor]
    lam: list[torch.Tensor]
    direction: torch.Tensor
    slopes: list[torch.Tensor]


class _RecordingCrown(Crown):
    """Crown that keeps the coefficients pushed into the watched nodes (activation outputs), adds the
    split multipliers' terms beta[node] (B, C, *S) once to the coefficients of their pre-activation nodes,
    and does not re-bound the rows whose box of a node is final (``final[node]`` (B,) bool)."""

    watch: dict[fx.Node, int] = {}  # noqa: RUF012 (set per instance before the recorded pass)
    beta: dict[fx.Node, torch.Tensor] = {}  # noqa: RUF012 (set per instance for the output passes)

    def __init__(
        self,
        graph: BoundGraph,
        region: Region,
        intermediate: str,
        known: dict[fx.Node, Box],
        final: dict[fx.Node, torch.Tensor],
    ) -> None:
        self.final = final  # read by _bound_neurons, which Crown.__init__ calls
        super().__init__(graph, region, intermediate, known=known)

    def _bound_neurons(
        self, node: fx.Node, idx: torch.Tensor, rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Crown's bounds (R, n) of the entries idx of node on rows, where the rows whose box is final keep
        it (their known box, already intersected into the current one)."""
        redo = ~self.final[node][rows] if node in self.final else torch.ones_like(rows, dtype=torch.bool)
        if bool(redo.all()):
            return super()._bound_neurons(node, idx, rows)
        box = self.bounds.boxes[node]
        lo, hi = (t.flatten(1)[rows][:, idx].clone() for t in (box.lo, box.hi))
        if bool(redo.any()):
            lo[redo], hi[redo] = super()._bound_neurons(node, idx, rows[redo])
        return lo, hi

    def backward(  # type: ignore[override]
        self, start: fx.Node, spec: torch.Tensor, rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self.added: set[fx.Node] = set()
        return super().backward(start, spec, rows)

    def _push(self, lams: dict[fx.Node, torch.Tensor], node: fx.Node, lam: torch.Tensor) -> None:  # type: ignore[override]
        if node in self.watch:
            self.seen[node] = self.seen[node] + lam if node in self.seen else lam
        if node in self.beta and node not in self.added:
            self.added.add(node)
            lam = lam + self.beta[node]
        Crown._push(lams, node, lam)


def _optimise(
    crown: _RecordingCrown,
    spec: torch.Tensor,
    nodes: list[fx.Node],
    acts: dict[fx.Node, int],
    upper: torch.Tensor,
    steps: int,
    slopes: list[torch.Tensor] | None,
    proved: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(upper (D, C), slopes): upper bounds of spec . f over the domains with split multipliers beta >= 0
    (per domain, row and decided neuron; module docstring) from beta = 0 and, when slopes is given (per
    split node (D, C, n), NaN: the Crown's slope), the output pass's lower ReLU slopes alpha (per domain,
    row and neuron, in their sound range ``slope_range``) from slopes, optimised jointly by projected Adam
    (step sizes BETA_LR, ALPHA_LR); each step's bound is sound, the elementwise minimum with upper (D, C)
    is returned with the last slopes per split node (for the children; empty when slopes is None).
    proved: maps the bounds (D, C) so far to the domains (D,) bool that need no tighter ones; before each
    step those leave the optimisation (the Crown restricted to the others, ``Crown.restrict``), and it
    ends when none is left."""
    d, c = spec.shape[:2]
    shapes = {n: crown.bounds.boxes[n].lo.shape[1:] for n in nodes}
    signs = []
    for n in nodes:
        box = crown.bounds.boxes[n]
        signs.append(((box.lo >= 0).to(spec.dtype) - (box.hi <= 0).to(spec.dtype)).reshape(d, 1, -1))
    params = [spec.new_zeros((d, c, sign.shape[2]), requires_grad=True) for sign in signs]
    rates = [BETA_LR] * len(params)
    ranges = []
    if slopes is not None:
        for act, i in acts.items():
            default = crown.relaxation(act).a_lo.reshape(d, 1, -1)
            init = torch.where(torch.isnan(slopes[i]), default, slopes[i].to(spec.dtype))
            low, high = slope_range(crown.bounds.rules[act].activation, crown.bounds.boxes[nodes[i]])
            ranges.append((low.reshape(d, 1, -1), high.reshape(d, 1, -1)))
            params.append(
                torch.maximum(torch.minimum(init, ranges[-1][1]), ranges[-1][0]).requires_grad_(True)
            )
            rates.append(ALPHA_LR)
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    out = [p.detach().clone() for p in params[len(nodes) :]]  # the slopes of every domain, written back
    best, view, active = upper, crown, torch.arange(d, device=spec.device)
    for t in range(1, steps + 1):
        if proved is not None:
            done = proved(best)[active]
            if bool(done.all()):
                break
            if bool(done.any()):  # the optimisation goes on over the open domains only
                keep = (~done).nonzero().flatten()
                view, active = view.restrict(keep), active[keep]
                params = [p.detach()[keep].requires_grad_(True) for p in params]
                moments = [(m[keep], v[keep]) for m, v in moments]
                signs = [sign[keep] for sign in signs]
                ranges = [(low[keep], high[keep]) for low, high in ranges]
        alphas = params[len(nodes) :]
        view.beta = {
            n: (p * sign).reshape(-1, c, *shapes[n]) for n, p, sign in zip(nodes, params, signs, strict=False)
        }
        if alphas:
            view.slopes = {
                a: p.reshape(-1, c, *shapes[nodes[i]]) for (a, i), p in zip(acts.items(), alphas, strict=True)
            }
        with torch.enable_grad():
            a, bias = view.backward(view.graph.output, spec[active])
            bound = concretize(a, bias, view.region)
            grads = torch.autograd.grad(bound.sum(), params, allow_unused=True)
        with torch.no_grad():
            best = best.clone()
            best[active] = torch.minimum(best[active], bound)
            for k, (p, (m, v), g, lr) in enumerate(zip(params, moments, grads, rates, strict=True)):
                if g is None:
                    continue
                m.mul_(ADAM[0]).add_(g, alpha=1 - ADAM[0])  # Adam, projected onto the sound range
                v.mul_(ADAM[1]).addcmul_(g, g, value=1 - ADAM[1])
                p.sub_(lr * (m / (1 - ADAM[0] ** t)) / ((v / (1 - ADAM[1] ** t)).sqrt() + 1e-8))
                if k < len(nodes):
                    p.clamp_(min=0)
                else:
                    low, high = ranges[k - len(nodes)]
                    p.copy_(torch.maximum(torch.minimum(p, high), low))
            for o, p in zip(out, params[len(nodes) :], strict=True):
                o[active] = p
    crown.beta, crown.slopes = {}, None
    slopes_out = [spec.new_empty(0)] * len(nodes) if out else []
    for (_, i), o in zip(acts.items(), out, strict=False):
        slopes_out[i] = o
    return best, slopes_out


@functools.cache
def _import_adam() -> None:
    """Constructs one torch.optim.Adam (``optimise_upper`` uses it): the first construction of a process
    imports torch._dynamo (4-6 s here), which must be charged to the time but not read as alpha-CROWN's
    cost (``_CLOCK``)."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def root_bounds(
    graph: BoundGraph,
    region: Region,
    spec: torch.Tensor,
    nodes: list[fx.Node],
    intermediate: str,
    steps: int,
    budget: float = math.inf,
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """(upper (1, C), lo, hi per split node (1, n)): the root's bounds by alpha-CROWN through every layer
    (``bounds.alpha`` mode ``full``): its output bound of spec (1, C, K) over the region (one row) and the
    intersection of every step's pre-activation boxes, all sound on the region (the branch and bound's
    first domain starts from them). Adam steps: at most `steps`, as many s as fit in budget seconds at a
    cost of (s + 1) E t (E = ``alpha.step_entries``, t the seconds per entry of the last run, ``_CLOCK``;
    the extra step stands for the polish and the last pass), none when fewer than two fit (plain CROWN
    then). A root run with steps measures t."""
    clock = time.perf_counter()
    _import_adam()
    budget -= time.perf_counter() - clock
    crown = Crown(graph, region, intermediate)
    entries = step_entries(crown, spec.shape[1])
    if math.isfinite(budget):
        steps = min(steps, int(budget / (entries * _CLOCK["entry"])) - 1)
    if steps >= 2:
        clock = time.perf_counter()
        upper = optimise_upper(crown, spec, steps, mode="full")
        _CLOCK["entry"] = (time.perf_counter() - clock) / ((steps + 1) * entries)
    else:
        with torch.no_grad():
            upper = crown.upper(graph.output, spec)
    boxes = crown.bounds.boxes
    return upper, [boxes[n].lo.reshape(1, -1) for n in nodes], [boxes[n].hi.reshape(1, -1) for n in nodes]


def bound_domains(
    graph: BoundGraph,
    region: Region,
    spec: torch.Tensor,
    nodes: list[fx.Node],
    lo: list[torch.Tensor],
    hi: list[torch.Tensor],
    rows: torch.Tensor,
    split: torch.Tensor | None = None,
    *,
    intermediate: str = "crown",
    alpha_steps: int = 0,
    beta_steps: int = 0,
    slopes: list[torch.Tensor] | None = None,
    proved: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> DomainBounds:
    """Sound bounds of D domains; see the module docstring.

    region: the D domains' input regions R_b (rows (D, *S)); spec (D, C, K) in the graph's dtype; nodes:
    split nodes (``split_nodes``);
    lo, hi: per node (D, n) flat boxes of the domains (-inf / inf where free); rows (D,): the
    specification row whose backward coefficients are recorded for branching; split (D,): the index in
    nodes of each domain's last ReLU split (-1: none), whose boxes of nodes[0..split] are final (the
    parent's bounds: re-bounding them over the same relaxations gives the same boxes), default none.
    alpha_steps: separate alpha-CROWN steps on the output pass (``Crown.optimise_upper``); beta_steps:
    joint steps of the split multipliers and, when slopes is given (per node (D, C, n), NaN: the Crown's
    slope; e.g. the parent's), of the output pass's lower slopes (``_optimise``); proved: maps upper
    bounds (D, C) to the domains (D,) bool that need no tighter ones (they leave those steps).
    """
    x0 = region.x0
    d = x0.shape[0]
    env = graph.evaluate(x0[:1])
    known = {
        node: Box(a.reshape(d, *env[node].shape[1:]), b.reshape(d, *env[node].shape[1:]))
        for node, a, b in zip(nodes, lo, hi, strict=True)
    }
    final = {} if split is None else {node: split >= i for i, node in enumerate(nodes)}
    crown = _RecordingCrown(graph, region, intermediate, known, final)
    acts = {a: i for a in crown.acts for i, n in enumerate(nodes) if crown.pre(a) is n}
    with torch.no_grad():
        crown.watch, crown.seen = acts, {}
        a, bias = crown.backward(graph.output, spec)
        crown.watch = {}
        upper = concretize(a, bias, region)
        pick = torch.arange(d, device=x0.device)
        lam = [spec.new_zeros(t.shape) for t in lo]
        for act, i in acts.items():
            if act in crown.seen:
                lam[i] = lam[i] + crown.seen[act][pick, rows].reshape(d, -1)
        direction = a[pick, rows]
    if alpha_steps > 0:
        upper = torch.minimum(upper, crown.optimise_upper(spec, alpha_steps))
    out: list[torch.Tensor] = []
    if beta_steps > 0:
        upper, out = _optimise(crown, spec, nodes, acts, upper, beta_steps, slopes, proved)
    if torch.isnan(upper).any():
        raise ValueError("bab: the bounds contain NaN (check the model for non-finite weights)")
    boxes = crown.bounds.boxes
    new_lo = [boxes[n].lo.reshape(d, -1) for n in nodes]
    new_hi = [boxes[n].hi.reshape(d, -1) for n in nodes]
    empty = torch.zeros(d, dtype=torch.bool, device=x0.device)
    for a, b, la, hb in zip(new_lo, new_hi, lo, hi, strict=True):
        empty |= ((a > hb) | (b < la)).any(dim=1)
    upper = upper.masked_fill(empty[:, None], -torch.inf)
    return DomainBounds(upper, new_lo, new_hi, lam, direction, out)
