"""Bound rules of the operations that only move values around: Flatten, view/reshape, Identity, Dropout
(eval), contiguous. Forward: the same operation on lo and hi. Backward: reshape the cotangent back.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from wdrobust.certify.bounds.interval import Box, Cot
from wdrobust.certify.bounds.rule import Rule, interval_arg, register, unsupported


@register(nn.Flatten, nn.Identity, nn.Dropout, torch.flatten, "flatten", "view", "reshape", "contiguous")
class ReshapeRule(Rule):
    """Order-preserving reshapes (and identities) that keep the batch axis and every value."""

    affine = True

    def forward(self, *args: Any, **kwargs: Any) -> Box:
        x = interval_arg(self, args)
        if isinstance(self.op, nn.Dropout) and self.op.training:
            raise unsupported("Dropout", self.name, "training mode (call model.eval())")
        self.n_args = len(args)
        self.in_shape = x.lo.shape[1:]
        out = Box(self.call(x.lo, *args[1:], **kwargs), self.call(x.hi, *args[1:], **kwargs))
        if out.lo.shape[0] != x.lo.shape[0] or out.lo.numel() != x.lo.numel():
            raise unsupported(f"reshape to {tuple(out.lo.shape)}", self.name, "it mixes samples")
        return out

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        shape = (*cot.center.shape[:2], *self.in_shape)
        radius = None if cot.radius is None else cot.radius.reshape(shape)
        return (Cot(cot.center.reshape(shape), radius), *((None,) * (self.n_args - 1)))
