"""Reading an ONNX file (plain or gzipped) into plain Python: initializers, nodes and the graph's input.

The ``onnx`` package is an optional extra, imported only here and only when a file is read; without it
``read_model`` raises a one-line ValueError saying how to install it.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wdrobust._optional import OPTIONAL, require

INSTALL_HINT = OPTIONAL["onnx"].hint


@dataclass(frozen=True)
class Node:
    """One ONNX node: operator type, name, input names ('' for an omitted optional input), output names,
    attributes as Python values (tensors as numpy arrays) and the opset of the default domain."""

    op: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]
    opset: int


@dataclass(frozen=True)
class Graph:
    """An ONNX graph: its one input (name and per-sample shape, the batch axis dropped), its one output,
    the initializers (name -> array) and the nodes in topological order."""

    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    initializers: dict[str, np.ndarray]
    nodes: list[Node]


def _onnx() -> Any:
    return require("onnx")


def is_onnx_path(path: str | Path) -> bool:
    """True for a file name ending in .onnx or .onnx.gz (any case)."""
    name = Path(path).name.lower()
    return name.endswith(".onnx") or name.endswith(".onnx.gz")


def read_model(path: str | Path) -> Any:
    """The onnx.ModelProto of a .onnx or .onnx.gz file (ValueError, one line, when it cannot be read)."""
    onnx = _onnx()
    path = Path(path)
    try:
        raw = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            raw = gzip.decompress(raw)
        return onnx.load_model_from_string(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ValueError(f"cannot read ONNX file {path}: {exc}") from None
    except Exception as exc:  # protobuf's DecodeError and friends
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{path} is not an ONNX model: {first}") from None


def _attribute(attr: Any) -> Any:
    onnx = _onnx()
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value


def _dims(value_info: Any) -> list[int | str]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]


def graph_of(model: Any) -> Graph:
    """The Graph of a ModelProto: exactly one input besides the initializers, of rank >= 2 with a batch
    axis first (symbolic or 1) and fixed per-sample sizes, and exactly one output."""
    onnx = _onnx()
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    for node in g.node:
        if node.domain not in ("", "ai.onnx"):
            raise ValueError(f"unsupported ONNX operator {node.domain}.{node.op_type} (node {node.name!r})")
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1 or len(g.output) != 1:
        raise ValueError(
            f"the ONNX graph must have one input and one output, it has {len(inputs)} and {len(g.output)}"
        )
    dims = _dims(inputs[0])
    batch_ok = bool(dims) and (isinstance(dims[0], str) or dims[0] in (0, 1))
    if len(dims) < 2 or not batch_ok or not all(isinstance(d, int) and d > 0 for d in dims[1:]):
        raise ValueError(f"ONNX input {inputs[0].name!r} has shape {dims}: expected (batch, fixed sizes...)")
    nodes = [
        Node(
            n.op_type,
            n.name or f"{n.op_type}_{k}",
            tuple(n.input),
            tuple(n.output),
            {a.name: _attribute(a) for a in n.attribute},
            opset,
        )
        for k, n in enumerate(g.node)
    ]
    return Graph(inputs[0].name, tuple(int(d) for d in dims[1:]), g.output[0].name, inits, nodes)
