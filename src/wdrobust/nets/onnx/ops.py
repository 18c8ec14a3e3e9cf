"""The operator table: one converter per ONNX operator (or family), ``OPS[op](node, args)`` -> one
``Lowering`` per output. Converters read constant inputs (weights, axes, shapes) from the inputs' static
values and build torch layers the bound engine knows where they exist (Gemm / MatMul by a constant ->
nn.Linear, Conv -> nn.Conv2d, BatchNormalization -> nn.BatchNorm1d/2d in eval, LayerNormalization ->
nn.LayerNorm, pools -> nn.AvgPool2d / nn.MaxPool2d, Flatten -> nn.Flatten, activations -> their
modules), else the small modules of ``layers``. Attributes and defaults follow the ONNX operator
specification; inputs that an opset moved from attributes to inputs (axes, pads, splits) are read from
either.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from wdrobust.nets.onnx import layers as L
from wdrobust.nets.onnx.reader import Node
from wdrobust.nets.onnx.values import WORLD_BATCHES, Lowering, Value, lowering

Converter = Callable[[Node, list[Value | None]], list[Lowering]]
OPS: dict[str, Converter] = {}

#: ONNX TensorProto data types -> torch dtypes (the ones Cast may name).
DTYPES = {
    1: torch.float32,
    2: torch.uint8,
    3: torch.int8,
    5: torch.int16,
    6: torch.int32,
    7: torch.int64,
    9: torch.bool,
    10: torch.float16,
    11: torch.float64,
}


def op(*names: str) -> Callable[[Converter], Converter]:
    """Register a converter for ONNX operator names."""

    def deco(fn: Converter) -> Converter:
        for name in names:
            OPS[name] = fn
        return fn

    return deco


def refuse(node: Node, why: str) -> ValueError:
    """The one-line error of a node the importer cannot convert."""
    return ValueError(f"unsupported ONNX node {node.name!r} ({node.op}): {why}")


def const(node: Node, args: list[Value | None], i: int, what: str) -> torch.Tensor | None:
    """The static value of input i (None when omitted); an error when it depends on the input."""
    if i >= len(args) or args[i] is None:
        return None
    value = args[i].fixed
    if value is None:
        raise refuse(node, f"its {what} (input {i}) must be a constant")
    return value


def ints(t: torch.Tensor | Sequence[int] | None) -> list[int] | None:
    return None if t is None else [int(v) for v in (t.reshape(-1).tolist() if torch.is_tensor(t) else t)]


def axes_of(node: Node, args: list[Value | None], index: int = 1) -> list[int] | None:
    """The axes of a node: its ``axes`` attribute (older opsets) or its input ``index`` (newer ones)."""
    return ints(node.attrs["axes"]) if "axes" in node.attrs else ints(const(node, args, index, "axes"))


def rank(args: list[Value | None], i: int = 0) -> int:
    return args[i].worlds[0].dim()


def shape(args: list[Value | None], i: int = 0) -> tuple[int, ...]:
    return tuple(args[i].worlds[0].shape)


def pos(axis: int, n: int) -> int:
    return axis + n if axis < 0 else axis


def tensor(array: Any) -> torch.Tensor:
    return torch.as_tensor(np.array(array)).clone()


# -- constants and shape arithmetic (folded at import) ---------------------------------------------------
@op("Constant")
def _constant(node: Node, args: list[Value | None]) -> list[Lowering]:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in node.attrs:
            value = tensor(node.attrs[key])
            if key in ("value_float", "value_floats"):
                value = value.float()
            return [lowering(L.Function(value.clone))]
    raise refuse(node, "only value, value_float(s) and value_int(s) constants are supported")


def _shape_of(x: torch.Tensor, start: int, end: int | None) -> torch.Tensor:
    return torch.tensor(x.shape[start:end], dtype=torch.int64)


@op("Shape")
def _shape(node: Node, args: list[Value | None]) -> list[Lowering]:
    fn = L.Function(_shape_of, start=node.attrs.get("start", 0), end=node.attrs.get("end"))
    return [lowering(fn, 0, shape_only=True)]


def _full(dims: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return torch.full(tuple(int(d) for d in dims.tolist()), value.item(), dtype=value.dtype)


@op("ConstantOfShape")
def _constant_of_shape(node: Node, args: list[Value | None]) -> list[Lowering]:
    value = tensor(node.attrs.get("value", np.zeros(1, np.float32))).reshape(-1)
    if args[0].dynamic:
        raise refuse(node, "its shape must not depend on the input's values")
    return [lowering(L.Function(_full, value=value), 0)]


def _expand(x: torch.Tensor, dims: torch.Tensor) -> torch.Tensor:
    target = torch.broadcast_shapes(x.shape, tuple(int(d) for d in dims.tolist()))
    return x.expand(target)


@op("Expand")
def _expand_op(node: Node, args: list[Value | None]) -> list[Lowering]:
    if args[0].dynamic or args[1].dynamic:
        raise refuse(node, "only constants can be expanded")
    return [lowering(L.Function(_expand), 0, 1)]


@op("Cast")
def _cast(node: Node, args: list[Value | None]) -> list[Lowering]:
    to = int(node.attrs["to"])
    if to not in DTYPES:
        raise refuse(node, f"cast to ONNX data type {to}")
    return [lowering(L.Cast(DTYPES[to]), 0)]


@op("Equal")
def _equal(node: Node, args: list[Value | None]) -> list[Lowering]:
    return [lowering(L.Function(torch.eq), 0, 1)]


@op("Where")
def _where(node: Node, args: list[Value | None]) -> list[Lowering]:
    return [lowering(L.Function(torch.where), 0, 1, 2)]


@op("Identity", "Dropout")
def _identity(node: Node, args: list[Value | None]) -> list[Lowering]:
    if len([o for o in node.outputs if o]) > 1:
        raise refuse(node, "the dropout mask output")
    return [lowering(nn.Identity(), 0)]


# -- elementwise --------------------------------------------------------------------------------------
@op("Add", "Sub", "Mul", "Div", "Pow")
def _binary(node: Node, args: list[Value | None]) -> list[Lowering]:
    integer = not any(a.worlds[0].is_floating_point() for a in args[:2])
    return [lowering(L.Binary(node.op, integer), 0, 1)]


UNARY: dict[str, Callable[[], nn.Module]] = {
    "Relu": nn.ReLU,
    "Sigmoid": nn.Sigmoid,
    "Tanh": nn.Tanh,
    "Sqrt": lambda: L.Function(torch.sqrt),
    "Erf": lambda: L.Function(torch.erf),
    "Neg": lambda: L.Function(torch.neg),
    "Exp": lambda: L.Function(torch.exp),
}


@op(*UNARY)
def _unary(node: Node, args: list[Value | None]) -> list[Lowering]:
    return [lowering(UNARY[node.op](), 0)]


@op("LeakyRelu")
def _leaky_relu(node: Node, args: list[Value | None]) -> list[Lowering]:
    return [lowering(nn.LeakyReLU(float(node.attrs.get("alpha", 0.01))), 0)]


@op("Gelu")
def _gelu(node: Node, args: list[Value | None]) -> list[Lowering]:
    return [lowering(nn.GELU(approximate=node.attrs.get("approximate", "none")), 0)]


@op("Softmax")
def _softmax(node: Node, args: list[Value | None]) -> list[Lowering]:
    n = rank(args)
    axis = pos(int(node.attrs.get("axis", -1 if node.opset >= 13 else 1)), n)
    if node.opset < 13 and axis != n - 1:
        raise refuse(node, f"opset-{node.opset} softmax (coerced to 2-D) over axes {axis}.. of rank {n}")
    return [lowering(nn.Softmax(dim=axis), 0)]


# -- linear layers ------------------------------------------------------------------------------------
def linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """nn.Linear computing x @ weight.T + bias; weight (out, in), bias (out,) or None."""
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


@op("Gemm")
def _gemm(node: Node, args: list[Value | None]) -> list[Lowering]:
    """Y = alpha A' B' + beta C (A' = A^T when transA, B' = B^T when transB) = nn.Linear with weight
    alpha B'^T and bias beta C (C broadcast to one row)."""
    if node.attrs.get("transA", 0):
        raise refuse(node, "transA")
    b = const(node, args, 1, "weight B").float()
    c = const(node, args, 2, "bias C")
    weight = float(node.attrs.get("alpha", 1.0)) * (b if node.attrs.get("transB", 0) else b.T)
    bias = None
    if c is not None:
        if c.numel() not in (1, weight.shape[0]) or c.dim() > 2 or (c.dim() == 2 and c.shape[0] != 1):
            raise refuse(node, f"bias C of shape {tuple(c.shape)}")
        bias = float(node.attrs.get("beta", 1.0)) * c.float().reshape(-1).expand(weight.shape[0])
    return [lowering(linear(weight, bias), 0)]


@op("MatMul")
def _matmul(node: Node, args: list[Value | None]) -> list[Lowering]:
    """A @ B: nn.Linear(weight B^T) when B is a constant matrix and A is computed, else torch.matmul."""
    b = args[1].fixed
    if args[0].dynamic and b is not None and b.dim() == 2 and b.is_floating_point():
        return [lowering(linear(b.T, None), 0)]
    return [lowering(L.Function(torch.matmul), 0, 1)]


def _symmetric_pads(node: Node, spatial: int) -> list[int]:
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "VALID"):
        raise refuse(node, f"auto_pad {auto}")
    pads = ints(node.attrs.get("pads")) or [0] * (2 * spatial)
    if pads[:spatial] != pads[spatial:]:
        raise refuse(node, f"asymmetric pads {pads}")
    return pads[:spatial]


@op("Conv")
def _conv(node: Node, args: list[Value | None]) -> list[Lowering]:
    w = const(node, args, 1, "weight").float()
    b = const(node, args, 2, "bias")
    spatial = w.dim() - 2
    if spatial not in (1, 2):
        raise refuse(node, f"{spatial}-D convolution")
    cls = nn.Conv1d if spatial == 1 else nn.Conv2d
    group = int(node.attrs.get("group", 1))
    layer = cls(
        w.shape[1] * group,
        w.shape[0],
        tuple(w.shape[2:]),
        stride=tuple(ints(node.attrs.get("strides")) or [1] * spatial),
        padding=tuple(_symmetric_pads(node, spatial)),
        dilation=tuple(ints(node.attrs.get("dilations")) or [1] * spatial),
        groups=group,
        bias=b is not None,
    )
    with torch.no_grad():
        layer.weight.copy_(w)
        if b is not None:
            layer.bias.copy_(b.float())
    return [lowering(layer, 0)]


@op("BatchNormalization")
def _batchnorm(node: Node, args: list[Value | None]) -> list[Lowering]:
    """Inference batch normalisation (running statistics): nn.BatchNorm1d (rank 2 or 3) or 2d (rank 4)."""
    if node.attrs.get("training_mode", 0) or len([o for o in node.outputs if o]) > 1:
        raise refuse(node, "training mode")
    scale, bias, mean, var = (const(node, args, i, "statistics").float() for i in range(1, 5))
    n = rank(args)
    if n not in (2, 3, 4):
        raise refuse(node, f"rank-{n} input")
    cls = nn.BatchNorm2d if n == 4 else nn.BatchNorm1d
    layer = cls(scale.numel(), eps=float(node.attrs.get("epsilon", 1e-5)))
    with torch.no_grad():
        layer.weight.copy_(scale)
        layer.bias.copy_(bias)
        layer.running_mean.copy_(mean)
        layer.running_var.copy_(var)
    return [lowering(layer.eval(), 0)]


@op("LayerNormalization")
def _layernorm(node: Node, args: list[Value | None]) -> list[Lowering]:
    """nn.LayerNorm over the axes from ``axis`` to the last."""
    if len([o for o in node.outputs if o]) > 1:
        raise refuse(node, "mean / inverse std outputs")
    axis = pos(int(node.attrs.get("axis", -1)), rank(args))
    normalized = shape(args)[axis:]
    layer = nn.LayerNorm(normalized, eps=float(node.attrs.get("epsilon", 1e-5)))
    scale, bias = const(node, args, 1, "scale"), const(node, args, 2, "bias")
    with torch.no_grad():
        layer.weight.copy_(scale.float().expand(normalized))
        layer.bias.copy_(torch.zeros(()) if bias is None else bias.float().expand(normalized))
    return [lowering(layer, 0)]


# -- pooling ------------------------------------------------------------------------------------------
def _pool_geometry(node: Node) -> dict[str, Any]:
    kernel = ints(node.attrs["kernel_shape"])
    if len(kernel) != 2:
        raise refuse(node, f"{len(kernel)}-D pooling")
    return {
        "kernel_size": tuple(kernel),
        "stride": tuple(ints(node.attrs.get("strides")) or [1, 1]),
        "padding": tuple(_symmetric_pads(node, 2)),
        "ceil_mode": bool(node.attrs.get("ceil_mode", 0)),
    }


@op("AveragePool")
def _avgpool(node: Node, args: list[Value | None]) -> list[Lowering]:
    geometry = _pool_geometry(node)
    include = bool(node.attrs.get("count_include_pad", 0))
    return [lowering(nn.AvgPool2d(**geometry, count_include_pad=include), 0)]


@op("MaxPool")
def _maxpool(node: Node, args: list[Value | None]) -> list[Lowering]:
    if len([o for o in node.outputs if o]) > 1 or node.attrs.get("storage_order", 0):
        raise refuse(node, "the indices output")
    dilation = tuple(ints(node.attrs.get("dilations")) or [1, 1])
    return [lowering(nn.MaxPool2d(**_pool_geometry(node), dilation=dilation), 0)]


@op("GlobalAveragePool")
def _global_avgpool(node: Node, args: list[Value | None]) -> list[Lowering]:
    if rank(args) != 4:
        raise refuse(node, f"rank-{rank(args)} input")
    return [lowering(nn.AdaptiveAvgPool2d(1), 0)]


@op("ReduceMean", "ReduceSum")
def _reduce(node: Node, args: list[Value | None]) -> list[Lowering]:
    n = rank(args)
    axes = axes_of(node, args)
    if not axes and node.attrs.get("noop_with_empty_axes", 0):
        return [lowering(nn.Identity(), 0)]
    axes = None if not axes else [pos(a, n) for a in axes]
    kind = "mean" if node.op == "ReduceMean" else "sum"
    return [lowering(L.Reduce(kind, axes, bool(node.attrs.get("keepdims", 1))), 0)]


# -- moving values around -----------------------------------------------------------------------------
@op("Flatten")
def _flatten(node: Node, args: list[Value | None]) -> list[Lowering]:
    """ONNX Flatten(axis) -> (prod d[:axis], prod d[axis:]); it keeps the batch only when the sizes of the
    axes 1..axis-1 multiply to 1 (axis >= 1), and is then nn.Flatten()."""
    dims = shape(args)
    axis = pos(int(node.attrs.get("axis", 1)), len(dims))
    if args[0].dynamic and (axis == 0 or math.prod(dims[1:axis]) != 1):
        raise refuse(node, f"flatten at axis {axis} of shape {dims} mixes samples")
    if not args[0].dynamic:
        return [lowering(L.Function(torch.reshape, shape=(math.prod(dims[:axis]), -1)), 0)]
    return [lowering(nn.Flatten(), 0)]


def onnx_shape(dims: Sequence[int], target: Sequence[int], allowzero: bool = False) -> list[int]:
    """ONNX Reshape's target for an input of shape dims: 0 copies the input's size (unless allowzero),
    -1 takes what is left."""
    out = [dims[i] if t == 0 and not allowzero else t for i, t in enumerate(target)]
    if -1 in out:
        known = math.prod(t for t in out if t != -1)
        out[out.index(-1)] = math.prod(dims) // known if known else 0
    return out


def _reshape_static(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return x.reshape(onnx_shape(list(x.shape), ints(target)))


@op("Reshape")
def _reshape(node: Node, args: list[Value | None]) -> list[Lowering]:
    """Constants: ONNX Reshape. Computed values: the target's first entry is read as the batch axis
    (the batch size, or 1 / 0 / -1 in a graph exported for batch 1) and the rest as per-sample sizes,
    which must be the same in both worlds -> Reshape(tail) = x.reshape(-1, *tail)."""
    if not args[0].dynamic:
        return [lowering(L.Function(_reshape_static), 0, 1)]
    if args[1].dynamic:
        raise refuse(node, "a target shape computed from the input's values")
    tails = []
    for w, batch in enumerate(WORLD_BATCHES):
        dims, target = list(args[0].worlds[w].shape), ints(args[1].worlds[w])
        if dims[0] != batch or target[0] not in (batch, 1, 0, -1):
            raise refuse(node, f"a reshape of {dims[1:]} per sample to {target} that moves the batch axis")
        tails.append(onnx_shape(dims[1:], target[1:], bool(node.attrs.get("allowzero", 0))))
    if tails[0] != tails[1] or math.prod(tails[0]) != math.prod(shape(args)[1:]):
        raise refuse(node, f"a reshape to {tails[0]} that depends on the batch size")
    return [lowering(L.Reshape(tails[0]), 0)]


@op("Transpose")
def _transpose(node: Node, args: list[Value | None]) -> list[Lowering]:
    perm = ints(node.attrs.get("perm")) or list(reversed(range(rank(args))))
    return [lowering(L.Permute(perm), 0)]


@op("Squeeze", "Unsqueeze")
def _squeeze(node: Node, args: list[Value | None]) -> list[Lowering]:
    axes = axes_of(node, args)
    unsqueeze = node.op == "Unsqueeze"
    if axes is None:
        if unsqueeze:
            raise refuse(node, "no axes")
        axes = [i for i, d in enumerate(shape(args)) if d == 1]
    n = rank(args) + (len(axes) if unsqueeze else 0)
    return [lowering(L.Squeeze([pos(a, n) for a in axes], unsqueeze), 0)]


@op("Concat")
def _concat(node: Node, args: list[Value | None]) -> list[Lowering]:
    axis = pos(int(node.attrs["axis"]), rank(args))
    return [lowering(L.Concat(axis), *range(len(args)))]


def _clamp(v: int, size: int, step: int) -> int:
    v = v + size if v < 0 else v
    return min(max(v, 0), size) if step > 0 else min(max(v, -1), size - 1)


@op("Slice")
def _slice(node: Node, args: list[Value | None]) -> list[Lowering]:
    if node.opset < 10:
        starts, ends = ints(node.attrs["starts"]), ints(node.attrs["ends"])
        axes, steps = ints(node.attrs.get("axes")), None
    else:
        starts, ends = ints(const(node, args, 1, "starts")), ints(const(node, args, 2, "ends"))
        axes, steps = ints(const(node, args, 3, "axes")), ints(const(node, args, 4, "steps"))
    dims = shape(args)
    axes = [pos(a, len(dims)) for a in (axes or range(len(starts)))]
    steps = steps or [1] * len(starts)
    if any(s <= 0 for s in steps):
        raise refuse(node, f"non-positive steps {steps}")
    index: list[int | slice] = [slice(None)] * (max(axes) + 1)
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        index[a] = slice(_clamp(s, dims[a], st), _clamp(e, dims[a], st), st)
    return [lowering(L.Index(tuple(index)), 0)]


@op("Gather")
def _gather(node: Node, args: list[Value | None]) -> list[Lowering]:
    n = rank(args)
    axis = pos(int(node.attrs.get("axis", 0)), n)
    idx = const(node, args, 1, "indices").long()
    idx = torch.where(idx < 0, idx + shape(args)[axis], idx)
    if idx.dim() == 0:
        return [lowering(L.Index((slice(None),) * axis + (int(idx),)), 0)]
    if axis == 0 and args[0].dynamic:
        raise refuse(node, "it gathers along the batch axis")
    dims = shape(args)
    out = [*dims[:axis], *idx.shape, *dims[axis + 1 :]]
    return [lowering(L.Take(axis, idx, out if axis == 0 else [-1, *out[1:]]), 0)]


@op("Split")
def _split(node: Node, args: list[Value | None]) -> list[Lowering]:
    dims = shape(args)
    axis = pos(int(node.attrs.get("axis", 0)), len(dims))
    outputs = len(node.outputs)
    sizes = ints(node.attrs.get("split")) or ints(const(node, args, 1, "split"))
    if sizes is None:
        chunk = -(-dims[axis] // int(node.attrs.get("num_outputs", outputs)))
        sizes = [min(chunk, dims[axis] - k * chunk) for k in range(outputs)]
    starts = np.cumsum([0, *sizes]).tolist()
    prefix = (slice(None),) * axis
    return [lowering(L.Index((*prefix, slice(starts[k], starts[k + 1]))), 0) for k in range(outputs)]


#: ONNX Pad modes -> F.pad modes.
PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


@op("Pad")
def _pad(node: Node, args: list[Value | None]) -> list[Lowering]:
    """ONNX pads [b_0, ..., b_{n-1}, e_0, ..., e_{n-1}] -> torch's (b_{n-1}, e_{n-1}, b_{n-2}, ...)."""
    if node.opset < 11:
        pads, value = ints(node.attrs["pads"]), float(node.attrs.get("value", 0.0))
    else:
        pads = ints(const(node, args, 1, "pads"))
        fill = const(node, args, 2, "constant_value")
        value = 0.0 if fill is None else float(fill)
        if const(node, args, 3, "axes") is not None:
            raise refuse(node, "the axes input")
    mode = PAD_MODES.get(node.attrs.get("mode", "constant"))
    if mode is None:
        raise refuse(node, f"mode {node.attrs.get('mode')}")
    n = len(pads) // 2
    if pads[0] or pads[n]:
        raise refuse(node, "padding along the batch axis")
    torch_pads = [p for k in reversed(range(1, n)) for p in (pads[k], pads[k + n])]
    return [lowering(L.Pad(torch_pads, mode, value), 0)]
