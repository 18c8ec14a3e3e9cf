"""The one place where branch and bound calls the bound engine (``certify.bounds.crown``).

``bound_domains`` bounds a batch of domains D_b = R_b cap {split constraints of row b}, R_b = B(x0_b, r_b)
cap [0,1]^d, for margin rows spec_b (C, K): U_bc >= max over D_b of spec_bc . f(x). The split decisions
enter as ``known`` boxes of the pre-activations z of ReLU-like activations: an active split (+1) sets
lo := max(lo, 0), an inactive split (-1) hi := min(hi, 0). Every point of D_b satisfies its splits, so the
boxes are sound on D_b; CROWN over them is sound on D_b (its linear bound holds on D_b, and concretising
over the larger R_b only loosens it). The constraints tighten the split neuron's relaxation and every layer
after it; the layers before it are not tightened (that needs beta-CROWN's multipliers, not built here).

For branching it also records, per domain, the backward coefficient lambda (n,) of each split activation's
output in the pass of one chosen specification row (``rows``), and the final pre-activation boxes: a
subclass of ``Crown`` that watches ``_push``. This is the hook to replace after engine changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx

from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.bounds.activations import ActivationRule
from wdrobust.certify.bounds.crown import Crown, concretize
from wdrobust.certify.bounds.interval import Box
from wdrobust.certify.bounds.region import Region


def split_nodes(graph: BoundGraph, x0: torch.Tensor) -> list[fx.Node]:
    """The pre-activation nodes of the ReLU-like activations (sigma(z) = max(z, 0) + s min(z, 0), which
    a sign split makes exact), in graph order; x0 (1, *S) is any input row (to read the rules)."""
    rules = graph.bounds(Region.ball(x0, x0.new_zeros(1), "linf")).rules
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
    coefficients A (its linear bound A . x + bias is largest where x moves along A)."""

    upper: torch.Tensor
    lo: list[torch.Tensor]
    hi: list[torch.Tensor]
    lam: list[torch.Tensor]
    direction: torch.Tensor


class _RecordingCrown(Crown):
    """Crown that keeps the coefficients pushed into the watched nodes (activation outputs)."""

    watch: dict[fx.Node, int] = {}  # noqa: RUF012 (set per instance before the recorded pass)

    def _push(self, lams: dict[fx.Node, torch.Tensor], node: fx.Node, lam: torch.Tensor) -> None:  # type: ignore[override]
        if node in self.watch:
            self.seen[node] = self.seen[node] + lam if node in self.seen else lam
        Crown._push(lams, node, lam)


def bound_domains(
    graph: BoundGraph,
    x0: torch.Tensor,
    r: torch.Tensor,
    spec: torch.Tensor,
    norm: str,
    nodes: list[fx.Node],
    splits: list[torch.Tensor],
    rows: torch.Tensor,
    *,
    intermediate: str = "crown",
    alpha_steps: int = 0,
) -> DomainBounds:
    """Sound bounds of D domains; see the module docstring.

    x0 (D, *S), r (D,), spec (D, C, K) in the graph's dtype; nodes: split nodes (``split_nodes``);
    splits: per node an int8 tensor (D, n) of decisions (+1 active, -1 inactive, 0 free); rows (D,): the
    specification row whose backward coefficients are recorded for branching.
    """
    known = {}
    for node, s in zip(nodes, splits, strict=True):
        inf = torch.full(s.shape, torch.inf, dtype=x0.dtype, device=x0.device)
        lo = torch.where(s > 0, torch.zeros_like(inf), -inf)
        hi = torch.where(s < 0, torch.zeros_like(inf), inf)
        like = graph.evaluate(x0[:1])[node]
        known[node] = Box(lo.reshape(s.shape[0], *like.shape[1:]), hi.reshape(s.shape[0], *like.shape[1:]))
    region = Region.ball(x0, r, norm)
    crown = _RecordingCrown(graph, region, intermediate, known=known)
    acts = {a: i for a in crown.acts for i, n in enumerate(nodes) if crown.pre(a) is n}
    with torch.no_grad():
        crown.watch, crown.seen = acts, {}
        pick = spec[torch.arange(spec.shape[0]), rows][:, None]  # (D, 1, K)
        direction, _ = crown.backward(graph.output, pick)
        lam = [spec.new_zeros(s.shape) for s in splits]
        for act, i in acts.items():
            if act in crown.seen:
                lam[i] = lam[i] + crown.seen[act][:, 0].reshape(x0.shape[0], -1)
        crown.watch = {}
        a, bias = crown.backward(graph.output, spec)
        upper = concretize(a, bias, region)
    if alpha_steps > 0:
        upper = torch.minimum(upper, crown.optimise_upper(spec, alpha_steps))
    if torch.isnan(upper).any():
        raise ValueError("bab: the bounds contain NaN (check the model for non-finite weights)")
    boxes = crown.bounds.boxes
    lo = [boxes[n].lo.reshape(x0.shape[0], -1) for n in nodes]
    hi = [boxes[n].hi.reshape(x0.shape[0], -1) for n in nodes]
    return DomainBounds(upper, lo, hi, lam, direction[:, 0])
