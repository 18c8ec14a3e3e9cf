"""The bound-rule interface and the registry that maps graph operations to rules.

Each supported operation of a torch.fx graph has one ``Rule`` subclass, registered for module classes
(``call_module``), functions (``call_function``) or method names (``call_method``). A rule is instantiated
once per graph node and per bound computation; ``forward`` maps the arguments' boxes to the output's box
(remembering what ``backward`` needs, e.g. derivative intervals), and ``backward`` maps the output's
interval cotangent to one cotangent per positional argument (None for constant arguments). Values that
depend only on the weights and cost more than a pass over them (dense matrices of small convolutions)
are kept in a per-node ``cache`` under explicit keys and checked against copies of the weights they
were made from (``Rule.memo``, ``same_values``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from wdrobust.certify.bounds.interval import Box, Cot

MODULE_RULES: dict[type[nn.Module], type[Rule]] = {}
FUNCTION_RULES: dict[Callable[..., Any], type[Rule]] = {}
METHOD_RULES: dict[str, type[Rule]] = {}
#: upper(k, spec): upper bounds (B, C) of spec . arg_k over the regions, spec (B, C, *S_k), for a rule's flat
#: argument k (linear bound propagation from that argument back to the input; ``Rule.relax``).
LinearUpper = Callable[[int, torch.Tensor], torch.Tensor]


class Rule:
    """Bound rule of one operation ``op`` (a module, a function or a method name).

    affine: the output is an affine function of the interval arguments (used for the ball tightening of
    the affine prefix and by the exact transposes of linear bound propagation); nonlinear: the rule has
    derivative intervals and sets ``stable``, a (B,) bool tensor that is True where the derivative is a
    single value over the whole box; layout: the rule accepts boxes whose batch axis was moved
    (``Box.batch_dim``); list_args: interval values may come inside a list argument (torch.cat);
    relaxed: a non-affine rule with a linear relaxation for linear bound propagation (``relax`` and
    ``linear_backward``; elementwise activations have their own path in ``bounds.propagation``); compounding:
    interval boxes grow quickly through the operation (products of intervals, softmax, LayerNorm), so
    the gradient certificates bound its inputs by CROWN (``local``'s boxes=auto); coordinatewise: an
    affine rule each of whose output entries is an affine function of one entry of the interval
    arguments (scaling, reshaping, indexing, concatenation), so interval propagation through it is exact.

    Global facts (the weight-based ``global`` certificate, valid at every input): ``use_global_slopes``
    replaces a nonlinear rule's derivative intervals by ones that hold everywhere, and ``l2_gain`` is a
    bound of the rule's l2 Lipschitz constant in each interval argument (the others fixed).

    ``backward`` (and ``linear_backward``) return one entry per argument of ``graph.flat_args(args)``.
    """

    affine: ClassVar[bool] = False
    nonlinear: ClassVar[bool] = False
    layout: ClassVar[bool] = False
    list_args: ClassVar[bool] = False
    relaxed: ClassVar[bool] = False
    compounding: ClassVar[bool] = False
    coordinatewise: ClassVar[bool] = False

    def __init__(self, op: Any, name: str, cache: dict[Any, Any] | None = None) -> None:
        self.op = op
        self.name = name
        self.stable: torch.Tensor | None = None
        self.cache = {} if cache is None else cache

    def memo(self, key: Any, deps: tuple[torch.Tensor, ...], make: Callable[[], Any]) -> Any:
        """make(), cached in ``cache`` (shared by the rules of one graph node across bound computations)
        under the explicit ``key`` (what the value is, e.g. a layout) and reused while deps hold the
        values they held when it was made (``same_values`` against copies kept in the entry), so an edit
        of a weight in place, through ``.data``, or a weight replaced or moved, makes it again. For values
        that cost far more than a pass over deps (the dense matrix of a small convolution)."""
        hit = self.cache.get(key)
        if hit is None or not same_values(hit[0], deps):
            hit = (kept_copies(deps), make())
            self.cache[key] = hit
        return hit[1]

    def call(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Apply the original operation to a concrete tensor x (the first argument)."""
        if isinstance(self.op, str):
            return getattr(x, self.op)(*args, **kwargs)
        return self.op(x, *args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Box:
        """Bounds of the output given boxes (interval arguments) and concrete values (the others)."""
        raise NotImplementedError

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        """Interval cotangents of the positional arguments from the output's cotangent."""
        raise NotImplementedError

    def use_global_slopes(self) -> None:
        """After ``forward``: replace the derivative intervals by intervals valid at every input (nonlinear
        rules); ValueError for a rule that has none."""
        op = self.op
        what = type(op).__name__ if isinstance(op, nn.Module) else getattr(op, "__name__", str(op))
        raise unsupported(what, self.name, "no global derivative bound")

    def l2_gain(self) -> float | None:
        """G with ||f(.., u, ..) - f(.., u', ..)||_2 <= G ||u - u'||_2 in each interval argument u, valid at
        every input, or None when the rule states none (a single-input affine rule is measured as a dense
        segment instead, ``bounds.dense``)."""
        return None

    def relax(self, inputs: list[Box | None], upper: LinearUpper | None = None) -> Any:
        """A linear relaxation of the operation on the boxes of its (flat) arguments (None for constants),
        possibly tighter than the boxes seen by ``forward``; a dataclass of batch-first tensors. upper, when
        given, bounds linear functions of the arguments (tighter than their boxes; rules may ignore it)."""
        raise NotImplementedError

    def params(self, rel: Any, specs: int) -> tuple[torch.Tensor, float, float] | None:
        """Optimisable parameters of the relaxation rel for ``specs`` specification rows (alpha-CROWN):
        (initial value (B, specs, ...), lower limit, upper limit), every value within the limits giving a
        sound relaxation, passed to ``linear_backward`` as param; None (the default): the rule has none."""
        return None

    def linear_backward(
        self, lam: torch.Tensor, rel: Any
    ) -> tuple[tuple[torch.Tensor | None, ...], torch.Tensor]:
        """(coefficients per flat argument, bias (B, C)) with lam . out <= sum_k coef_k . arg_k + bias for
        every value allowed by the relaxation rel; lam (B, C, *S_out). A rule with ``params`` also takes
        them as a third argument param (B, C, ...)."""
        raise NotImplementedError


def kept_copies(tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Detached copies of tensors, kept by a cache entry to recognise their values later."""
    return tuple(t.detach().clone() for t in tensors)


def same_values(kept: Sequence[torch.Tensor], tensors: Sequence[torch.Tensor]) -> bool:
    """True when tensors hold exactly the values of kept: as many, each of the same dtype, device and
    shape, every entry equal (one pass over them)."""
    return len(kept) == len(tensors) and all(
        a.dtype == b.dtype and a.device == b.device and a.shape == b.shape and torch.equal(a, b)
        for a, b in zip(kept, tensors, strict=True)
    )


def register(*keys: Any) -> Callable[[type[Rule]], type[Rule]]:
    """Class decorator registering a rule for module classes, functions and method names (strings)."""

    def deco(rule: type[Rule]) -> type[Rule]:
        for key in keys:
            if isinstance(key, str):
                METHOD_RULES[key] = rule
            elif isinstance(key, type) and issubclass(key, nn.Module):
                MODULE_RULES[key] = rule
            else:
                FUNCTION_RULES[key] = rule
        return rule

    return deco


def unsupported(what: str, name: str, why: str = "no bound rule") -> ValueError:
    """The error raised for an operation the engine cannot bound; it names the operation."""
    return ValueError(f"unsupported operation {what} (graph node {name!r}): {why}")


def interval_arg(rule: Rule, args: tuple[Any, ...]) -> Box:
    """The first argument as a Box; other interval arguments are an error for single-input rules."""
    if not isinstance(args[0], Box) or any(isinstance(a, Box) for a in args[1:]):
        raise unsupported(type(rule).__name__, rule.name, "expects exactly one interval input, first")
    return args[0]


def rest(args: tuple[Any, ...]) -> tuple[None, ...]:
    """No cotangents for the constant arguments after the first."""
    return (None,) * (len(args) - 1)
