"""Bound rules of the affine operations with signed weights: Linear and Conv2d (modules and functions).

For y = A x + b over a box x in c +- r:  y in (A c + b) +- |A| r  (exact for one affine map).
Backward: A^T applied to an interval cotangent center +- radius gives A^T center +- |A|^T radius.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wdrobust.certify.bounds.interval import Box, Cot, Fn, map_classes
from wdrobust.certify.bounds.rule import Rule, interval_arg, register, unsupported


class AffineRule(Rule):
    """y = A x + b. Subclasses return (affine, abs_linear, transpose, abs_transpose) maps of x."""

    affine = True

    def maps(self, x: Box, *args: Any, **kwargs: Any) -> tuple[Fn, Fn, Fn, Fn]:
        raise NotImplementedError

    def forward(self, *args: Any, **kwargs: Any) -> Box:
        x = interval_arg(self, args)
        self.n_args = len(args)
        fn, abs_fn, self.transpose, self.abs_transpose = self.maps(x, *args[1:], **kwargs)
        return Box.from_center(fn(x.center), abs_fn(x.radius))

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        return (map_classes(cot, self.transpose, self.abs_transpose), *((None,) * (self.n_args - 1)))


def _linear_maps(w: torch.Tensor, b: torch.Tensor | None) -> tuple[Fn, Fn, Fn, Fn]:
    wa = w.abs()
    return (lambda v: F.linear(v, w, b), lambda v: F.linear(v, wa), lambda v: v @ w, lambda v: v @ wa)


@register(nn.Linear)
class LinearModule(AffineRule):
    """nn.Linear: A = weight."""

    def maps(self, x: Box) -> tuple[Fn, Fn, Fn, Fn]:
        return _linear_maps(self.op.weight, self.op.bias)


@register(F.linear)
class LinearFunction(AffineRule):
    """F.linear(x, weight, bias=None)."""

    def maps(self, x: Box, weight: torch.Tensor, bias: torch.Tensor | None = None) -> tuple[Fn, Fn, Fn, Fn]:
        return _linear_maps(weight, bias)


def _conv_maps(
    rule: Rule,
    x: Box,
    w: torch.Tensor,
    b: torch.Tensor | None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Fn, Fn, Fn, Fn]:
    if isinstance(padding, str):
        if padding != "valid":
            raise unsupported(f"conv2d with padding={padding!r}", rule.name, "use integer padding")
        padding = 0
    wa = w.abs()
    in_shape = x.lo.shape[1:]

    def transpose(weight: torch.Tensor) -> Fn:
        return lambda v: torch.nn.grad.conv2d_input(
            (v.shape[0], *in_shape), weight, v, stride, padding, dilation, groups
        )

    return (
        lambda v: F.conv2d(v, w, b, stride, padding, dilation, groups),
        lambda v: F.conv2d(v, wa, None, stride, padding, dilation, groups),
        transpose(w),
        transpose(wa),
    )


@register(nn.Conv2d)
class Conv2dModule(AffineRule):
    """nn.Conv2d with zero padding: A = the convolution, A^T = the transposed convolution."""

    def maps(self, x: Box) -> tuple[Fn, Fn, Fn, Fn]:
        m = self.op
        if m.padding_mode != "zeros":
            raise unsupported(f"Conv2d(padding_mode={m.padding_mode!r})", self.name, "only zero padding")
        return _conv_maps(self, x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)


@register(F.conv2d)
class Conv2dFunction(AffineRule):
    """F.conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)."""

    def maps(self, x: Box, weight: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[Fn, Fn, Fn, Fn]:
        return _conv_maps(self, x, weight, *args, **kwargs)
