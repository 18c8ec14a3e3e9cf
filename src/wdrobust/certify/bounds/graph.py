"""Tracing and dispatch of the bound engine: a model's torch.fx graph with one bound rule per node.

``BoundGraph(model)`` traces the model once (modules that have a rule stay leaves), checks that every
operation on the input has a rule (else a ValueError naming the first unsupported operation), and
offers, for a batch of input regions (``region.Region``: a box [lo_b, hi_b] cap a ball B(x0_b, r_b)):
- ``bounds``: boxes of every value over the regions by interval propagation. The affine prefix
  of the graph (the values that are affine functions of the input, before the first nonlinearity) is
  tightened with the ball itself: a_k(x) in a_k(x0) +- r ||A_k||_* where A_k is the k-th row of the
  prefix's linear part (its dual norms are computed once per norm by pushing the input basis through).
  Not for linf when the intervals of the prefix are exact already (``box_exact_prefix``: at most one
  mixing affine rule, the others ``coordinatewise``, on every path from the input): the region is then a
  box and each prefix entry's interval is its exact range there, which the ball cannot tighten;
- ``backward``: an interval cotangent pushed from the output to the input (the interval backward pass);
- ``margin_upper``: upper bounds of c^T z over the region for cotangents c.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import fx, nn

# Importing the operator modules registers their rules.
from wdrobust.certify.bounds import activations as _activations  # noqa: F401
from wdrobust.certify.bounds import bilinear as _bilinear  # noqa: F401
from wdrobust.certify.bounds import layernorm as _layernorm  # noqa: F401
from wdrobust.certify.bounds import linear as _linear  # noqa: F401
from wdrobust.certify.bounds import norm as _norm  # noqa: F401
from wdrobust.certify.bounds import pool as _pool  # noqa: F401
from wdrobust.certify.bounds import shape as _shape  # noqa: F401
from wdrobust.certify.bounds import softmax as _softmax  # noqa: F401
from wdrobust.certify.bounds.interval import Box, Cot
from wdrobust.certify.bounds.region import Region
from wdrobust.certify.bounds.rule import (
    FUNCTION_RULES,
    METHOD_RULES,
    MODULE_RULES,
    Rule,
    kept_copies,
    same_values,
    unsupported,
)
from wdrobust.threat import dual_of

#: Operations that read only the shape of an interval value; they are evaluated on a concrete stand-in.
SHAPE_QUERIES = {("call_method", "size"), ("call_method", "dim"), ("call_function", getattr)}
#: Modules whose training mode uses batch statistics or randomness (they are bounded in eval mode only).
TRAINING_DEPENDENT = (nn.modules.batchnorm._BatchNorm, nn.Dropout)
#: Input dimension above which the ball tightening of the affine prefix is skipped (it stays sound).
TIGHTEN_LIMIT = 1 << 14


def flat_args(args: tuple[Any, ...]) -> list[Any]:
    """The positional arguments with list and tuple arguments spliced in (torch.cat's list of tensors):
    the order in which ``Rule.backward`` returns one cotangent per argument."""
    out: list[Any] = []
    for a in args:
        out.extend(a if isinstance(a, (list, tuple)) else [a])
    return out


class _Tracer(fx.Tracer):
    """Keeps every module with a registered rule as one call_module node."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) in MODULE_RULES or super().is_leaf_module(m, qualname)


def _describe(node: fx.Node, gm: fx.GraphModule) -> str:
    if node.op == "call_module":
        return type(gm.get_submodule(node.target)).__name__
    if node.op == "call_method":
        return f".{node.target}()"
    return getattr(node.target, "__name__", str(node.target))


class Bounds:
    """Boxes of the graph's interval values and the rules that produced them, for one batch."""

    def __init__(self, boxes: dict[fx.Node, Box], rules: dict[fx.Node, Rule]) -> None:
        self.boxes = boxes
        self.rules = rules

    def stable(self) -> torch.Tensor:
        """(B,) bool: every nonlinearity has a single derivative value over the region."""
        flags = [r.stable for r in self.rules.values() if r.nonlinear]
        first = next(iter(self.boxes.values())).lo
        out = torch.ones(first.shape[0], dtype=torch.bool, device=first.device)
        for f in flags:
            out &= f
        return out


class BoundGraph:
    """A model traced for the bound engine; see the module docstring."""

    def __init__(self, model: nn.Module) -> None:
        try:
            graph = _Tracer().trace(model)
        except Exception as exc:  # fx raises many kinds of errors on untraceable code
            raise ValueError(f"cannot trace the model with torch.fx: {exc}") from None
        self.gm = fx.GraphModule(model, graph)
        self.nodes = list(graph.nodes)
        inputs = [n for n in self.nodes if n.op == "placeholder"]
        if len(inputs) != 1:
            raise ValueError(f"the model must take exactly one input, its graph has {len(inputs)}")
        self.input = inputs[0]
        self.interval: set[fx.Node] = {self.input}
        self.rule_of: dict[fx.Node, type[Rule]] = {}
        for node in self.nodes:
            if node.op in ("placeholder", "output") or (node.op, node.target) in SHAPE_QUERIES:
                continue
            if not any(a in self.interval for a in node.all_input_nodes):
                continue
            self.interval.add(node)
            self.rule_of[node] = self._rule_class(node)
            listed = any(
                isinstance(a, (list, tuple)) and any(isinstance(v, fx.Node) and v in self.interval for v in a)
                for a in node.args
            )
            if (listed and not self.rule_of[node].list_args) or any(
                isinstance(v, fx.Node) and v in self.interval for v in node.kwargs.values()
            ):
                raise unsupported(_describe(node, self.gm), node.name, "interval input inside a list/keyword")
        out = next(n for n in self.nodes if n.op == "output").args[0]
        if not isinstance(out, fx.Node) or out not in self.interval:
            raise ValueError("the model must return one logits tensor computed from its input")
        self.output = out
        self.prefix = self._affine_prefix()
        self.frontier = [
            n for n in self.prefix if n is not self.input and any(u not in self.prefix for u in n.users)
        ]
        self.box_exact_prefix = max(self._mixing_depths().values()) <= 1
        self._rownorms: dict[
            tuple[Any, ...], tuple[tuple[torch.Tensor, ...], dict[fx.Node, torch.Tensor]]
        ] = {}
        self._caches: dict[fx.Node, dict[Any, Any]] = {n: {} for n in self.rule_of}

    def _rule_class(self, node: fx.Node) -> type[Rule]:
        if node.op == "call_module":
            rule = MODULE_RULES.get(type(self.gm.get_submodule(node.target)))
        elif node.op == "call_function":
            rule = FUNCTION_RULES.get(node.target)
        elif node.op == "call_method":
            rule = METHOD_RULES.get(node.target)
        else:
            rule = None
        if rule is None:
            raise unsupported(_describe(node, self.gm), node.name)
        if node.op == "call_module":
            mod = self.gm.get_submodule(node.target)
            if mod.training and isinstance(mod, TRAINING_DEPENDENT):
                raise unsupported(type(mod).__name__, node.name, "training mode (call model.eval())")
        return rule

    def _op(self, node: fx.Node) -> Any:
        return self.gm.get_submodule(node.target) if node.op == "call_module" else node.target

    def _affine_prefix(self) -> set[fx.Node]:
        prefix = {self.input}
        for node in self.nodes:
            rule = self.rule_of.get(node)
            inputs = [a for a in node.all_input_nodes if a in self.interval]
            if rule is not None and rule.affine and all(a in prefix for a in inputs):
                prefix.add(node)
        return prefix

    def _mixing_depths(self) -> dict[fx.Node, int]:
        """For every prefix value, the largest number of affine rules that are not ``coordinatewise``
        on a path from the input to it (the input: 0)."""
        depth = {self.input: 0}
        for node in self.nodes:
            if node in self.prefix and node is not self.input:
                inputs = [depth[a] for a in node.all_input_nodes if a in self.interval]
                depth[node] = max(inputs) + (0 if self.rule_of[node].coordinatewise else 1)
        return depth

    # -- concrete evaluation -------------------------------------------------------------------------
    def _concrete(self, node: fx.Node, env: dict[fx.Node, Any]) -> Any:
        """Evaluate one node on concrete values (never in place)."""
        args = fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = dict(fx.node.map_arg(node.kwargs, lambda n: env[n]))
        if node.op == "get_attr":
            obj: Any = self.gm
            for part in str(node.target).split("."):
                obj = getattr(obj, part)
            return obj
        if node.op == "call_module":
            mod = self.gm.get_submodule(node.target)
            if getattr(mod, "inplace", False) and isinstance(args[0], torch.Tensor):
                args = (args[0].clone(), *args[1:])
            return mod(*args, **kwargs)
        if kwargs.get("inplace"):
            kwargs["inplace"] = False
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        return node.target(*args, **kwargs)

    def evaluate(self, x: torch.Tensor, nodes: set[fx.Node] | None = None) -> dict[fx.Node, Any]:
        """Concrete values of the graph's nodes at x (all nodes, or those in ``nodes`` and the constants they
        read: get_attr nodes, shape queries and other non-interval nodes whose inputs are known)."""
        env: dict[fx.Node, Any] = {self.input: x}
        for node in self.nodes:
            if node.op in ("placeholder", "output"):
                continue
            wanted = nodes is None or node in nodes
            constant = node not in self.interval and all(a in env for a in node.all_input_nodes)
            if wanted or constant:
                env[node] = self._concrete(node, env)
        return env

    def _constants(self, node: fx.Node, env: dict[fx.Node, Any]) -> Any:
        """A non-interval node, evaluated with each box replaced by its lower end (for shape queries)."""
        stand_in = {k: (v.lo if isinstance(v, Box) else v) for k, v in env.items()}
        return self._concrete(node, stand_in)

    # -- ball tightening of the affine prefix -------------------------------------------------------
    def _prefix_weights(self) -> list[torch.Tensor]:
        """The tensors the affine prefix reads, in graph order: the parameters and buffers of the modules
        it calls and the attributes (get_attr nodes) its operations take, directly or through constant
        nodes (e.g. a transposed weight)."""
        reads, todo = set(self.prefix), list(self.prefix)
        while todo:
            for arg in todo.pop().all_input_nodes:
                if arg not in reads and arg not in self.interval:
                    reads.add(arg)
                    todo.append(arg)
        tensors: list[torch.Tensor] = []
        for node in self.nodes:
            if node in reads and node.op == "call_module":
                module = self.gm.get_submodule(node.target)
                tensors += [*module.parameters(), *module.buffers()]
            elif node in reads and node.op == "get_attr":
                value = operator.attrgetter(node.target)(self.gm)
                tensors += [value] if isinstance(value, torch.Tensor) else []
        return tensors

    def rownorms(self, norm: str, like: torch.Tensor) -> dict[fx.Node, torch.Tensor]:
        """||A_k||_* for every unit of the affine prefix's frontier values, shape (1, *S_node) each.

        A is the linear part of input -> value, A e_i = value(e_i) - value(0), accumulated over chunks of
        the input basis: sum |.| (dual l1), sqrt(sum squares) (dual l2) or max |.| (dual linf).
        """
        key = (norm, like.device, like.dtype, tuple(like.shape[1:]))
        weights = self._prefix_weights()
        hit = self._rownorms.get(key)
        if hit is not None and same_values(hit[0], weights):
            return hit[1]
        self._rownorms.clear()  # the weights changed (or another norm/device): keep one entry
        shape = like.shape[1:]
        d = math.prod(shape)
        dual = dual_of(norm)
        zero = self.evaluate(like.new_zeros((1, *shape)), self.prefix)
        size = max(zero[n].numel() for n in self.frontier) if self.frontier else 1
        chunk = max(1, (1 << 22) // size)
        acc = {n: torch.zeros_like(zero[n]) for n in self.frontier}
        for start in range(0, d, chunk):
            idx = torch.arange(start, min(d, start + chunk), device=like.device)
            basis = torch.zeros((idx.numel(), d), dtype=like.dtype, device=like.device)
            basis[torch.arange(idx.numel(), device=like.device), idx] = 1.0
            env = self.evaluate(basis.reshape(-1, *shape), self.prefix)
            for n in self.frontier:
                col = (env[n] - zero[n]).abs()
                if dual == "l1":
                    acc[n] += col.sum(dim=0, keepdim=True)
                elif dual == "l2":
                    acc[n] += col.square().sum(dim=0, keepdim=True)
                else:
                    acc[n] = torch.maximum(acc[n], col.amax(dim=0, keepdim=True))
        if dual == "l2":
            acc = {n: a.sqrt() for n, a in acc.items()}
        self._rownorms[key] = (kept_copies(weights), acc)
        return acc

    # -- interval propagation ------------------------------------------------------------------------
    def bounds(
        self,
        region: Region,
        tighten: bool = True,
        known: dict[fx.Node, Box] | None = None,
    ) -> Bounds:
        """Boxes of every interval value over the regions (``Region``: the box [lo_b, hi_b] cap the ball
        B(x0_b, r_b)); the input's box is [lo, hi], the affine prefix is tightened with the ball.

        known: sound boxes of some values on the same regions (e.g. CROWN's tightened pre-activations);
        each computed box is intersected with them before its users see it, so that every rule's
        derivative intervals come from the tighter boxes."""
        x0, r = region.x0, region.r
        env: dict[fx.Node, Any] = {self.input: Box(region.lo, region.hi)}
        rules: dict[fx.Node, Rule] = {}
        tight = tighten and bool(self.frontier) and math.prod(x0.shape[1:]) <= TIGHTEN_LIMIT
        tight = tight and not (region.norm == "linf" and self.box_exact_prefix)
        anchors = self.evaluate(x0, self.prefix) if tight else {}
        norms = self.rownorms(region.norm, x0) if tight else {}
        for node in self.nodes:
            if node.op in ("placeholder", "output"):
                continue
            if node not in self.interval:
                env[node] = self._constants(node, env)
                continue
            rule = self.rule_of[node](self._op(node), node.name, self._caches[node])
            args = fx.node.map_arg(node.args, lambda n: env[n])
            kwargs = dict(fx.node.map_arg(node.kwargs, lambda n: env[n]))
            if not rule.layout and any(isinstance(a, Box) and a.batch_dim for a in flat_args(args)):
                raise unsupported(_describe(node, self.gm), node.name, "an input whose batch axis was moved")
            box = rule.forward(*args, **kwargs)
            if node in norms and box.batch_dim == 0:
                half = r.reshape(-1, *([1] * (box.lo.dim() - 1))) * norms[node]
                box = box.intersect(anchors[node] - half, anchors[node] + half)
            if known is not None and node in known:
                box = box.intersect(known[node].lo, known[node].hi)
            env[node] = box
            rules[node] = rule
        return Bounds({n: v for n, v in env.items() if n in self.interval}, rules)

    def backward(
        self,
        bounds: Bounds,
        seed: Cot,
        kept: dict[fx.Node, Cot] | None = None,
        shortcuts: Mapping[fx.Node, tuple[fx.Node, Callable[[Cot], Cot]]] | None = None,
    ) -> Cot:
        """Push the output cotangent seed (B, C, K) back to the input: an interval (B, C, *S).

        kept: if given, receives the (complete) cotangent of every node the pass reaches, e.g. the
        pre-activations of a MILP encoding. shortcuts: node -> (start, fn): the node's cotangent goes to
        start as fn(cot) instead of through the rules in between (a dense segment's transpose).
        """
        cots: dict[fx.Node, Cot] = {self.output: seed}
        for node in reversed(self.nodes):
            cot = cots.pop(node, None)
            if cot is None:
                continue
            if kept is not None:
                kept[node] = cot
            if node is self.input:
                return cot
            if shortcuts is not None and node in shortcuts:
                start, fn = shortcuts[node]
                pairs: Any = [(start, fn(cot))]
            else:
                pairs = zip(flat_args(node.args), bounds.rules[node].backward(cot), strict=False)
            for arg, g in pairs:
                if g is None or not isinstance(arg, fx.Node) or arg not in self.interval:
                    continue
                cots[arg] = cots[arg] + g if arg in cots else g
        x = bounds.boxes[self.input].lo
        return Cot(x.new_zeros((*seed.center.shape[:2], *x.shape[1:])))

    def margin_upper(self, bounds: Bounds, c: torch.Tensor) -> torch.Tensor:
        """Upper bounds of c_b^T z over the region, c (B, C, K) -> (B, C).

        When the logits come from an affine rule of one interval value h (z = A h + b), the bound is
        c^T z(center h) + |A^T c| . radius(h) (exact over the box of h); otherwise c+ . hi - c- . lo.
        """
        z = bounds.boxes[self.output]
        node = self.output
        rule = bounds.rules.get(node)
        args = [a for a in node.args if isinstance(a, fx.Node) and a in self.interval]
        exact = node not in self.prefix  # prefix boxes may be tightened, so their centers are not A h + b
        if exact and rule is not None and rule.affine and len(args) == 1 and node.args[0] is args[0]:
            h = bounds.boxes[args[0]]
            back = rule.backward(Cot(c))[0]
            if back is not None and back.radius is None:
                spread = (back.center.abs() * h.radius.unsqueeze(1)).flatten(2).sum(dim=2)
                return (c * z.center.unsqueeze(1)).sum(dim=2) + spread
        return (c.clamp(min=0) * z.hi.unsqueeze(1) + c.clamp(max=0) * z.lo.unsqueeze(1)).sum(dim=2)
