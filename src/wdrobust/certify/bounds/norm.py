"""Bound rules of elementwise affine maps y = s * x + t with constant s, t: BatchNorm in eval mode, the
Normalize layer of wdrobust.nets, and arithmetic with constants (+, -, *, / by a constant; a sum or
difference of two intervals).

Box: y in (s c + t) +- |s| r. Backward: s * center +- |s| * radius.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import nn

from wdrobust.certify.bounds.interval import Box, Cot, lift
from wdrobust.certify.bounds.rule import Rule, interval_arg, register, unsupported
from wdrobust.nets.layers import Normalize


def _channel_shape(x: Box) -> tuple[int, ...]:
    """Broadcast shape of a per-channel vector for a box of shape (B, C, *spatial)."""
    return (-1,) + (1,) * (x.lo.dim() - 2)


class DiagonalRule(Rule):
    """y = s * x + t elementwise; subclasses return (s, t) broadcastable to the box (without the batch)."""

    affine = True
    coordinatewise = True

    def coefficients(self, x: Box, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def forward(self, *args: Any, **kwargs: Any) -> Box:
        x = interval_arg(self, args)
        self.n_args = len(args)
        s, t = self.coefficients(x, *args[1:], **kwargs)
        self.scale = torch.as_tensor(s, dtype=x.lo.dtype, device=x.lo.device)
        out = Box.from_center(self.scale * x.center + t, self.scale.abs() * x.radius)
        if out.lo.shape != x.lo.shape:
            raise unsupported(type(self).__name__, self.name, "a constant broadcasts the interval input")
        self.ndim = x.lo.dim()
        return out

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        s = lift(self.scale, self.ndim)
        radius = None if cot.radius is None else cot.radius * s.abs()
        return (Cot(cot.center * s, radius), *((None,) * (self.n_args - 1)))


@register(nn.BatchNorm1d, nn.BatchNorm2d)
class BatchNormRule(DiagonalRule):
    """BatchNorm in eval mode: s = weight / sqrt(running_var + eps), t = bias - running_mean * s."""

    def coefficients(self, x: Box) -> tuple[Any, Any]:
        m = self.op
        if m.training or m.running_var is None:
            raise unsupported(
                type(m).__name__, self.name, "batch statistics (call model.eval(); running stats needed)"
            )
        s = torch.rsqrt(m.running_var + m.eps)
        t = -m.running_mean * s
        if m.weight is not None:
            s, t = s * m.weight, t * m.weight
        if m.bias is not None:
            t = t + m.bias
        shape = _channel_shape(x)
        return s.reshape(shape), t.reshape(shape)


@register(Normalize)
class NormalizeRule(DiagonalRule):
    """wdrobust.nets.Normalize: (x - mean) / std, i.e. s = 1/std, t = -mean/std."""

    def coefficients(self, x: Box) -> tuple[Any, Any]:
        s = 1.0 / self.op.std[0]
        return s, -self.op.mean[0] * s


@register(operator.neg, torch.neg, "neg")
class NegRule(DiagonalRule):
    """-x."""

    def coefficients(self, x: Box) -> tuple[Any, Any]:
        return -1.0, 0.0


@register(operator.add, torch.add, "add", operator.sub, torch.sub, "sub")
class AddRule(Rule):
    """x + y or x - y: two intervals (exact interval sum) or an interval and a constant (a shift)."""

    affine = True

    def forward(self, a: Any, b: Any, *args: Any, **kwargs: Any) -> Box:
        if args or kwargs:
            raise unsupported(f"{self.op} with extra arguments", self.name)
        self.sign = -1.0 if self.op in (operator.sub, torch.sub, "sub") else 1.0
        self.boxes = (isinstance(a, Box), isinstance(b, Box))
        if all(self.boxes):
            if a.lo.shape != b.lo.shape:
                raise unsupported(f"{self.op}", self.name, "interval operands of different shapes")
            if self.sign > 0:
                return Box(a.lo + b.lo, a.hi + b.hi)
            return Box(a.lo - b.hi, a.hi - b.lo)
        box, const = (a, b) if self.boxes[0] else (b, a)
        flip = self.sign < 0 and self.boxes[1]  # const - box
        lo, hi = (-box.hi, -box.lo) if flip else (box.lo, box.hi)
        shift = -const if (self.sign < 0 and self.boxes[0]) else const
        out = Box(lo + shift, hi + shift)
        if out.lo.shape != box.lo.shape:
            raise unsupported(f"{self.op}", self.name, "a constant broadcasts the interval input")
        return out

    def l2_gain(self) -> float:
        """1 in each argument: ||(a + b) - (a' + b')|| <= ||a - a'|| + ||b - b'||."""
        return 1.0

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        second = -cot if self.sign < 0 else cot
        return (cot if self.boxes[0] else None, second if self.boxes[1] else None)


@register(operator.mul, torch.mul, "mul", operator.truediv, torch.div, "div")
class MulRule(DiagonalRule):
    """x * k, k * x or x / k with a constant k (a product of two intervals is unsupported)."""

    def forward(self, a: Any, b: Any) -> Box:  # type: ignore[override]
        divide = self.op in (operator.truediv, torch.div, "div")
        if isinstance(a, Box) and isinstance(b, Box):
            raise unsupported(
                f"{getattr(self.op, '__name__', self.op)}", self.name, "product of two intervals"
            )
        self.swapped = not isinstance(a, Box)
        if self.swapped:
            if divide:
                raise unsupported("division by an interval", self.name)
            a, b = b, a
        self.k = 1.0 / b if divide else b
        return super().forward(a)

    def coefficients(self, x: Box) -> tuple[Any, Any]:
        return self.k, 0.0

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        out = super().backward(cot)[0]
        return (out, None) if not self.swapped else (None, out)
