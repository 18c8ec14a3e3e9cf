"""ONNX networks as torch modules: ``load_onnx(path)`` reads a .onnx or .onnx.gz file (with the optional
``onnx`` package: pip install wdrobust[onnx]) and returns an nn.Module (an nn.Sequential for a chain of
layers, else an ``OnnxGraph``) that accepts any batch size, runs on CPU and CUDA and traces with
torch.fx. The operators it converts are the keys of ``OPS`` (see ``ops`` and docs/verify.md).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from wdrobust._device import resolve_device
from wdrobust.nets.onnx.build import build_module
from wdrobust.nets.onnx.layers import OnnxGraph
from wdrobust.nets.onnx.ops import OPS
from wdrobust.nets.onnx.reader import INSTALL_HINT, graph_of, is_onnx_path, read_model


def import_model(model: object) -> nn.Module:
    """The torch module of an onnx.ModelProto (eval mode, CPU)."""
    return build_module(graph_of(model))


def load_onnx(path: str | Path, device: str | torch.device | None = None) -> nn.Module:
    """The torch module of a .onnx / .onnx.gz file, in eval mode on ``device``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    return import_model(read_model(path)).to(resolve_device(device))


__all__ = ["INSTALL_HINT", "OPS", "OnnxGraph", "import_model", "is_onnx_path", "load_onnx"]
