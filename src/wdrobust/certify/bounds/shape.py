"""Bound rules of the operations that only move values around: Flatten, view/reshape, Identity, Dropout
(eval), contiguous, permute/transpose, basic indexing and concatenation (the head split and merge, class
token and its slicing of a ViT). Forward: the same operation on lo and hi (exact). Backward: the transposed
selection applied to the cotangent (reshape back, inverse permutation, scatter, split).
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import nn

from wdrobust.certify.bounds.interval import Box, Cot
from wdrobust.certify.bounds.rule import Rule, interval_arg, register, unsupported


@register(nn.Flatten, nn.Identity, nn.Dropout, torch.flatten, "flatten", "view", "reshape", "contiguous")
class ReshapeRule(Rule):
    """Order-preserving reshapes (and identities) that keep the batch axis and every value."""

    affine = True
    coordinatewise = True

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


def _axis(d: int, ndim: int) -> int:
    return d + ndim if d < 0 else d


@register(torch.permute, torch.transpose, "permute", "transpose")
class PermuteRule(Rule):
    """permute(dims) / transpose(d0, d1) of one interval value, the batch axis included (attention moves
    it when splitting heads). With the box stored batch-first and the batch at ``batch_dim`` of the
    model's value, the stored output is the stored input permuted by pi with pi[0] = 0; backward applies
    the inverse permutation to the cotangent (whose class axis 1 stays in place)."""

    layout = True
    affine = True
    coordinatewise = True

    def forward(self, *args: Any, **kwargs: Any) -> Box:
        x = interval_arg(self, args)
        if kwargs:
            raise unsupported(f".{self.op}()", self.name, "keyword arguments")
        n = x.lo.dim()
        rest = args[1:]
        if self.op in ("transpose", torch.transpose):
            d0, d1 = (_axis(int(d), n) for d in rest)
            dims = list(range(n))
            dims[d0], dims[d1] = dims[d1], dims[d0]
        else:
            flat = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest
            dims = [_axis(int(d), n) for d in flat]
        bd = x.batch_dim
        stored_in = [bd] + [a for a in range(n) if a != bd]  # model axis held by each stored axis
        stored_out = [bd] + [a for a in dims if a != bd]
        self.pi = [stored_in.index(a) for a in stored_out]
        self.n_args = len(args)
        return Box(x.lo.permute(self.pi), x.hi.permute(self.pi), dims.index(bd))

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        inv = [0, 1] + [self.pi.index(a) + 1 for a in range(1, len(self.pi))]
        radius = None if cot.radius is None else cot.radius.permute(inv)
        return (Cot(cot.center.permute(inv), radius), *((None,) * (self.n_args - 1)))


@register(operator.getitem)
class GetItemRule(Rule):
    """Basic indexing v[idx] with integers, slices and Ellipsis (the q/k/v split of attention, the class
    token of a ViT); the batch axis must be taken whole. Forward: the same index on lo and hi (translated
    to the batch-first storage). Backward: the cotangent scattered into zeros of the input's shape."""

    layout = True
    affine = True
    coordinatewise = True

    def forward(self, x: Any, index: Any) -> Box:  # type: ignore[override]
        x = interval_arg(self, (x, index))
        items = list(index) if isinstance(index, tuple) else [index]
        if any(not isinstance(i, (int, slice)) and i is not Ellipsis for i in items):
            raise unsupported("indexing", self.name, "only integers, slices and ... are supported")
        if items.count(Ellipsis) > 1:
            raise unsupported("indexing", self.name, "more than one ...")
        n = x.lo.dim()
        if Ellipsis in items:
            k = items.index(Ellipsis)
            items = items[:k] + [slice(None)] * (n - len(items) + 1) + items[k + 1 :]
        items += [slice(None)] * (n - len(items))
        bd = x.batch_dim
        if items[bd] != slice(None):
            raise unsupported("indexing", self.name, "it selects along the batch axis")
        stored = tuple(items[:bd] + items[bd + 1 :])  # per-sample axes in stored order
        self.index = (slice(None), *stored)
        self.in_shape = x.lo.shape[1:]
        out_bd = sum(isinstance(i, slice) for i in items[:bd])
        return Box(x.lo[self.index], x.hi[self.index], out_bd)

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        def scatter(t: torch.Tensor) -> torch.Tensor:
            out = t.new_zeros((*t.shape[:2], *self.in_shape))
            out[(slice(None), *self.index)] = t
            return out

        return (Cot(scatter(cot.center), None if cot.radius is None else scatter(cot.radius)), None)


@register(torch.cat, torch.concat)
class CatRule(Rule):
    """torch.cat of interval values and constants (the class token of a ViT) along a per-sample axis.
    Forward: cat of the lower (upper) ends, constants as themselves. Backward: the cotangent split along
    the axis, one piece per interval argument (None for the constants)."""

    affine = True
    coordinatewise = True
    list_args = True

    def forward(self, values: Any, dim: int = 0) -> Box:  # type: ignore[override]
        boxes = [v for v in values if isinstance(v, Box)]
        n = boxes[0].lo.dim()
        self.dim = _axis(int(dim), n)
        if self.dim == 0:
            raise unsupported("cat", self.name, "along the batch axis")
        batch = boxes[0].lo.shape[0]
        if any(v.shape[0] != batch or v.dim() != n for v in values if not isinstance(v, Box)):
            raise unsupported("cat", self.name, "a constant without the batch axis")
        self.is_box = [isinstance(v, Box) for v in values]
        self.sizes = [(v.lo if isinstance(v, Box) else v).shape[self.dim] for v in values]
        lo = torch.cat([v.lo if isinstance(v, Box) else v for v in values], dim=self.dim)
        hi = torch.cat([v.hi if isinstance(v, Box) else v for v in values], dim=self.dim)
        return Box(lo, hi)

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        centers = cot.center.split(self.sizes, dim=self.dim + 1)
        radii = [None] * len(self.sizes) if cot.radius is None else cot.radius.split(self.sizes, self.dim + 1)
        return tuple(
            Cot(c, r) if box else None for c, r, box in zip(centers, radii, self.is_box, strict=True)
        )
