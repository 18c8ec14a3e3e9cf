"""From an ONNX graph to a torch module: evaluate every node in the two worlds (``values``), fold what does
not depend on the input, turn the rest into layers (``ops``), then tidy the layer list:

- a constant added to the output of a bias-free nn.Linear (an exported MatMul + Add) becomes its bias;
- a Sub and / or Div by per-channel constants applied to the input first becomes ``nets.layers.Normalize``;
- a static value that depends on the batch size only (a class token repeated over the batch) is made at
  run time by ``BatchConstant`` from the input's batch size.

The result is an nn.Sequential when the layers form a chain (each reads only the previous one's output),
else an ``OnnxGraph``. Either way it has the attribute ``input_shape``: the per-sample input shape of the
ONNX graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from wdrobust.nets.layers import Normalize
from wdrobust.nets.onnx import layers as L
from wdrobust.nets.onnx.ops import OPS
from wdrobust.nets.onnx.reader import Graph, Node
from wdrobust.nets.onnx.values import WORLD_BATCHES, Value


@dataclass
class Step:
    """One layer of the imported model: module applied to the values named ``args``, giving ``out``."""

    module: nn.Module
    args: list[str]
    out: str


@dataclass
class Trace:
    """The values of the graph, the layers made so far, and how often each value is read."""

    values: dict[str, Value]
    steps: list[Step] = field(default_factory=list)
    reads: dict[str, int] = field(default_factory=dict)


def _worlds(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.rand((n, *shape), generator=gen) for n in WORLD_BATCHES)
    return a, b


def _run(node: Node, trace: Trace) -> None:
    convert = OPS.get(node.op)
    if convert is None:
        raise ValueError(f"unsupported ONNX operator {node.op} (node {node.name!r})")
    missing = [n for n in node.inputs if n and n not in trace.values]
    if missing:
        raise ValueError(f"ONNX node {node.name!r} reads {missing[0]!r}, which no earlier node makes")
    args = [trace.values[n] if n else None for n in node.inputs]
    for out, low in zip(node.outputs, convert(node, args), strict=False):
        used = [args[i] for i in low.args]
        try:
            with torch.no_grad():
                worlds = tuple(low.module(*[a.worlds[w] for a in used]) for w in range(2))
        except (RuntimeError, ValueError, IndexError, TypeError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"ONNX node {node.name!r} ({node.op}) fails on its inputs: {first}") from None
        dynamic = not low.shape_only and any(a.dynamic for a in used)
        trace.values[out] = Value(worlds, dynamic)
        if dynamic:
            names = [node.inputs[i] for i in low.args]
            trace.steps.append(Step(low.module, names, out))
            for n in names:
                trace.reads[n] = trace.reads.get(n, 0) + 1


def _fold_bias(trace: Trace, output: str) -> None:
    """Linear(x) + c (c a constant of one row) -> Linear with bias c, when nothing else reads Linear(x)."""
    made = {s.out: s for s in trace.steps}
    kept = []
    for step in trace.steps:
        if isinstance(step.module, L.Binary) and step.module.op == "Add":
            dyn = [n for n in step.args if trace.values[n].dynamic]
            src = made.get(dyn[0]) if len(dyn) == 1 else None
            c = trace.values[next(n for n in step.args if n not in dyn)].fixed if src else None
            layer = src.module if src else None
            if (
                isinstance(layer, nn.Linear)
                and layer.bias is None
                and c is not None
                and c.dim() >= 1
                and c.numel() == layer.out_features == c.shape[-1]
                and trace.reads[src.out] == 1
                and src.out != output
            ):
                layer.bias = nn.Parameter(c.reshape(-1).float().clone())
                src.out = step.out
                made[step.out] = src
                continue
        kept.append(step)
    trace.steps = kept


def _channels(c: torch.Tensor | None, ndim: int, channels: int) -> list[float] | None:
    """The per-channel values of a constant broadcast against (N, C, ...) inputs of rank ndim, else None."""
    if c is None or c.dim() > ndim:
        return None
    full = c.reshape((1,) * (ndim - c.dim()) + tuple(c.shape))
    if any(s != 1 for i, s in enumerate(full.shape) if i != 1) or full.shape[1] not in (1, channels):
        return None
    return [float(v) for v in full.reshape(-1).expand(channels).tolist()]


def _fold_normalize(trace: Trace, input_name: str, input_shape: tuple[int, ...]) -> None:
    """A leading Sub(x, mean) and / or Div(., std) with per-channel constants -> Normalize(mean, std)."""
    ndim, channels = len(input_shape) + 1, input_shape[0]
    mean, std, taken, current = [0.0] * channels, [1.0] * channels, 0, input_name
    for kind in ("Sub", "Div"):
        step = trace.steps[taken] if taken < len(trace.steps) else None
        if step is None or not isinstance(step.module, L.Binary) or step.module.op != kind:
            continue
        if step.args[0] != current or trace.reads.get(current, 0) != 1:
            continue
        values = _channels(trace.values[step.args[1]].fixed, ndim, channels)
        if values is None or (kind == "Div" and min(values) <= 0):
            continue
        mean, std = (values, std) if kind == "Sub" else (mean, values)
        taken, current = taken + 1, step.out
    if taken:
        layer = Normalize(mean, std, ndim)
        trace.steps[:taken] = [Step(layer, [input_name], current)]


def _batch_constants(trace: Trace, input_name: str) -> None:
    """Give every static value that layers read a source: a buffer when it is the same in both worlds,
    a BatchConstant layer when it is one row repeated over the batch."""
    steps, made = [], set()
    for step in trace.steps:
        for n in step.args:
            v = trace.values[n]
            if v.dynamic or v.fixed is not None or n in made:
                continue
            a, b = v.worlds
            row = a[:1]
            same = a.shape[0] == WORLD_BATCHES[0] and b.shape[0] == WORLD_BATCHES[1]
            if not same or not (torch.equal(a, row.expand_as(a)) and torch.equal(b, row.expand_as(b))):
                raise ValueError(f"ONNX value {n!r} depends on the batch size in an unsupported way")
            steps.append(Step(L.BatchConstant(row.clone()), [input_name], n))
            made.add(n)
        steps.append(step)
    trace.steps = steps


def build_module(graph: Graph) -> nn.Module:
    """The torch module of an ONNX graph (module docstring), in eval mode on the CPU."""
    values = {name: Value((torch.tensor(a),) * 2, False) for name, a in graph.initializers.items()}
    values[graph.input_name] = Value(_worlds(graph.input_shape), True)
    trace = Trace(values)
    for node in graph.nodes:
        _run(node, trace)
    out = trace.values.get(graph.output_name)
    if out is None or not out.dynamic:
        raise ValueError(f"the ONNX output {graph.output_name!r} is not computed from the input")
    _fold_bias(trace, graph.output_name)
    _fold_normalize(trace, graph.input_name, graph.input_shape)
    _batch_constants(trace, graph.input_name)
    chain = all(
        s.args == [trace.steps[k - 1].out if k else graph.input_name] for k, s in enumerate(trace.steps)
    )
    if chain and trace.steps[-1].out == graph.output_name:
        model: nn.Module = nn.Sequential(*(s.module for s in trace.steps))
    else:
        constants = {
            n: trace.values[n].fixed
            for s in trace.steps
            for n in s.args
            if not trace.values[n].dynamic and trace.values[n].fixed is not None
        }
        model = L.OnnxGraph(
            [s.module for s in trace.steps],
            [s.args for s in trace.steps],
            [s.out for s in trace.steps],
            constants,
            graph.input_name,
            graph.output_name,
        )
    model.input_shape = graph.input_shape
    return model.eval()
