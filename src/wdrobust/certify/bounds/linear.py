"""Bound rules of the affine operations with signed weights: Linear and Conv2d (modules and functions).

For y = A x + b over a box x in c +- r:  y in (A c + b) +- |A| r  (exact for one affine map).
Backward: A^T applied to an interval cotangent center +- radius gives A^T center +- |A|^T radius.

|A| is recomputed per bound computation (one pass over the weights). A small convolution (dense matrix of
at most DENSE_ENTRIES entries) is applied as a product with its dense matrix (cached per graph node,
``Rule.memo``) unless it is a stride-1 convolution with at least DENSE_MIN_CHANNELS input channels per
group: measured on CPU with 8x8 and 4x4 maps and ~1000 cotangent rows, one GEMM beat ``conv_transpose2d``
1.1-3x on strided or single-channel convolutions but lost 1.7x on a stride-1 3x3 one (32 -> 64
channels). Other convolutions use ``conv_transpose2d``. Each entry of the dense matrix is one kernel
weight (or 0), so the dense matrix of |W| is |dense matrix of W|.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wdrobust.certify.bounds.interval import Box, Cot, Fn, map_classes
from wdrobust.certify.bounds.rule import Rule, interval_arg, register, unsupported

#: Largest dense convolution matrix (entries) used in place of the convolution.
DENSE_ENTRIES = 1 << 20
#: Stride-1 convolutions with at least this many input channels per group keep the convolution kernels.
DENSE_MIN_CHANNELS = 4


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


def _with_abs(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(m, |m|): a dense matrix and its absolute value, cached together."""
    return m, m.abs()


def _linear_maps(rule: AffineRule, w: torch.Tensor, b: torch.Tensor | None) -> tuple[Fn, Fn, Fn, Fn]:
    wa = w.abs()
    return (lambda v: F.linear(v, w, b), lambda v: F.linear(v, wa), lambda v: v @ w, lambda v: v @ wa)


@register(nn.Linear)
class LinearModule(AffineRule):
    """nn.Linear: A = weight."""

    def maps(self, x: Box) -> tuple[Fn, Fn, Fn, Fn]:
        return _linear_maps(self, self.op.weight, self.op.bias)


@register(F.linear)
class LinearFunction(AffineRule):
    """F.linear(x, weight, bias=None)."""

    def maps(self, x: Box, weight: torch.Tensor, bias: torch.Tensor | None = None) -> tuple[Fn, Fn, Fn, Fn]:
        return _linear_maps(self, weight, bias)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_maps(
    rule: AffineRule,
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
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    wa = w.abs()
    in_shape = tuple(x.lo.shape[1:])
    out_hw = tuple(
        (in_shape[1 + i] + 2 * padding[i] - dilation[i] * (w.shape[2 + i] - 1) - 1) // stride[i] + 1
        for i in range(2)
    )
    out_shape = (w.shape[0], *out_hw)
    extra = tuple(
        in_shape[1 + i]
        - ((out_hw[i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (w.shape[2 + i] - 1) + 1)
        for i in range(2)
    )

    def conv_t(weight: torch.Tensor) -> Fn:
        return lambda v: F.conv_transpose2d(v, weight, None, stride, padding, extra, groups, dilation)

    def dense(weight: torch.Tensor) -> torch.Tensor:
        """The (F_out, F_in) matrix of the convolution (without bias): rows = transposes of the basis."""
        f_out = math.prod(out_shape)
        eye = torch.eye(f_out, dtype=weight.dtype, device=weight.device).reshape(f_out, *out_shape)
        return conv_t(weight)(eye).reshape(f_out, -1)

    def matmul(m: torch.Tensor) -> Fn:
        return lambda v: (v.reshape(v.shape[0], -1) @ m).reshape(v.shape[0], *in_shape)

    def dense_forward(m: torch.Tensor, bias: torch.Tensor | None) -> Fn:
        return lambda v: F.linear(v.reshape(v.shape[0], -1), m, bias).reshape(v.shape[0], *out_shape)

    entries = math.prod(in_shape) * math.prod(out_shape)
    efficient_conv = stride == (1, 1) and w.shape[1] >= DENSE_MIN_CHANNELS
    if entries <= DENSE_ENTRIES and not efficient_conv:
        key = ("dense", in_shape, stride, padding, dilation, groups)
        m, ma = rule.memo(key, (w,), lambda: _with_abs(dense(w)))
        bias = None if b is None else b.repeat_interleave(math.prod(out_hw))
        return dense_forward(m, bias), dense_forward(ma, None), matmul(m), matmul(ma)
    return (
        lambda v: F.conv2d(v, w, b, stride, padding, dilation, groups),
        lambda v: F.conv2d(v, wa, None, stride, padding, dilation, groups),
        conv_t(w),
        conv_t(wa),
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
