"""The small torch modules an imported ONNX graph is made of, besides torch's own layers (nn.Linear,
nn.Conv2d, nn.ReLU, nn.BatchNorm2d, nn.Flatten, ...). Each forward is plain torch code that torch.fx can
trace into the methods and functions the bound engine knows (operator.add, .reshape, .permute, getitem,
torch.cat, .mean, ...). Axis arguments are ONNX axes of the full tensor, batch axis included.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: ONNX binary arithmetic -> Python operator (numpy-style broadcasting in both).
ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "Add": operator.add,
    "Sub": operator.sub,
    "Mul": operator.mul,
    "Div": operator.truediv,
    "Pow": operator.pow,
}


class Binary(nn.Module):
    """a op b for an ONNX arithmetic operator (Add, Sub, Mul, Div, Pow); Div of integers (``integer``)
    truncates, as in ONNX."""

    def __init__(self, op: str, integer: bool = False) -> None:
        super().__init__()
        self.op = op
        self.fn = ARITHMETIC[op]
        self.truncate = op == "Div" and integer

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.truncate:
            return torch.div(a, b, rounding_mode="trunc")
        return self.fn(a, b)


class Function(nn.Module):
    """fn(*args) for a torch function without parameters (torch.matmul, torch.sqrt, torch.erf, ...)."""

    def __init__(self, fn: Callable[..., torch.Tensor], **kwargs: Any) -> None:
        super().__init__()
        self.fn = fn
        self.kwargs = kwargs

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(*args, **self.kwargs)


class Reshape(nn.Module):
    """x.reshape(-1, *tail): a reshape that keeps the batch axis first (per-sample sizes ``tail``)."""

    def __init__(self, tail: Sequence[int]) -> None:
        super().__init__()
        self.tail = tuple(int(t) for t in tail)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, *self.tail)


class Permute(nn.Module):
    """x.permute(*perm) (ONNX Transpose)."""

    def __init__(self, perm: Sequence[int]) -> None:
        super().__init__()
        self.perm = tuple(int(p) for p in perm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.perm)


class Index(nn.Module):
    """x[index] with a tuple of integers and slices (ONNX Slice, Split, Gather of one index)."""

    def __init__(self, index: tuple[int | slice, ...]) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[self.index]


class Take(nn.Module):
    """ONNX Gather with an index array: x.index_select(axis, indices) reshaped to ``shape`` (the output's
    shape, -1 for the batch axis when axis > 0)."""

    def __init__(self, axis: int, indices: torch.Tensor, shape: Sequence[int]) -> None:
        super().__init__()
        self.axis = axis
        self.register_buffer("indices", indices.reshape(-1), persistent=False)
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(self.axis, self.indices).reshape(self.shape)


class Concat(nn.Module):
    """torch.cat(parts, dim=axis)."""

    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        return torch.cat(list(parts), dim=self.axis)


class Reduce(nn.Module):
    """x.mean / x.sum over ``axes`` (all axes when None), keeping them (size 1) when keepdims."""

    def __init__(self, kind: str, axes: Sequence[int] | None, keepdims: bool) -> None:
        super().__init__()
        self.kind = kind
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.keepdims = keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axes = tuple(range(x.dim())) if self.axes is None else self.axes
        return getattr(x, self.kind)(dim=axes, keepdim=self.keepdims)


class Squeeze(nn.Module):
    """x.squeeze(axes) (ONNX Squeeze) or, with unsqueeze=True, size-1 axes inserted at ``axes``."""

    def __init__(self, axes: Sequence[int], unsqueeze: bool = False) -> None:
        super().__init__()
        self.axes = tuple(sorted(int(a) for a in axes))
        self.unsqueeze = unsqueeze

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.unsqueeze:
            return x.squeeze(self.axes)
        for a in self.axes:
            x = x.unsqueeze(a)
        return x


class Pad(nn.Module):
    """F.pad(x, pads, mode, value) with torch's pad order (last axis first: before, after, ...)."""

    def __init__(self, pads: Sequence[int], mode: str, value: float) -> None:
        super().__init__()
        self.pads = tuple(int(p) for p in pads)
        self.mode = mode
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "constant":
            return F.pad(x, self.pads, value=self.value)
        return F.pad(x, self.pads, mode=self.mode)


class Cast(nn.Module):
    """x.to(dtype)."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype)


class BatchConstant(nn.Module):
    """A constant repeated along the batch axis of the model's input x: c (1, *S) -> (N, *S) (an exported
    model's class token: ONNX ConstantOfShape of the input's batch size)."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = nn.Parameter(value, requires_grad=False)  # a parameter: torch.fx traces it as get_attr
        self.tail = tuple(value.shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], *self.tail)


class OnnxGraph(nn.Module):
    """An imported ONNX graph that is not a chain: ``layers`` run in order, layer k reading ``wiring[k]``
    (value names: the input, earlier layers' outputs, or constants held as buffers ``const_<i>``) and
    writing ``outputs[k]``; the model returns the value named ``output``. The Python loop unrolls under
    torch.fx tracing into one node per layer."""

    def __init__(
        self,
        layers: Sequence[nn.Module],
        wiring: Sequence[Sequence[str]],
        outputs: Sequence[str],
        constants: dict[str, torch.Tensor],
        input_name: str,
        output: str,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.wiring = [tuple(w) for w in wiring]
        self.outputs = list(outputs)
        self.const_attr: dict[str, str] = {}
        for i, (name, value) in enumerate(constants.items()):
            self.register_buffer(f"const_{i}", value, persistent=True)
            self.const_attr[name] = f"const_{i}"
        self.input_name = input_name
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, Any] = {self.input_name: x}
        for layer, names, out in zip(self.layers, self.wiring, self.outputs, strict=True):
            args = [env[n] if n not in self.const_attr else getattr(self, self.const_attr[n]) for n in names]
            env[out] = layer(*args)
        return env[self.output]
