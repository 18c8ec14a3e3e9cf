"""Loading and checking the model and the data of an evaluation, before anything is written.

Every check raises ValueError with a one-line message: unknown data or model, NaN inputs, inputs outside
[0, 1], a model that does not accept the data's input shape, labels outside [0, K).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wdrobust import data, nets
from wdrobust.evaluate.config import DEFAULT_MODEL, EvalConfig
from wdrobust.train import ensure_default_model


@dataclass
class Inputs:
    """The model (eval mode, on device) and the first n samples of the split: x (n, *S), y (n,)."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    classes: int
    facts: dict[str, Any]


def load_model(name: str, device: torch.device) -> tuple[nn.Module, str]:
    """The bundled default (trained and cached on first use) or a checkpoint path; returns (model, path)."""
    if name == DEFAULT_MODEL:
        path = Path(ensure_default_model())
    else:
        path = Path(name)
        if not path.exists():
            raise ValueError(f"unknown model {name!r}: not {DEFAULT_MODEL!r} and no such checkpoint file")
    return nets.load(path, device=device).eval(), str(path)


def load_inputs(cfg: EvalConfig, device: torch.device) -> Inputs:
    """Load, subset and check the data and the model; nothing is written to the run folder."""
    x, y = data.load(cfg.data, cfg.split, root=cfg.data_root, device="cpu")
    available = int(x.shape[0])
    if available == 0:
        raise ValueError(f"data {cfg.data!r} split {cfg.split!r} is empty")
    n = min(cfg.n, available)
    x = torch.as_tensor(x[:n], dtype=torch.float32)
    y = torch.as_tensor(y[:n]).long()
    check_inputs(x)
    model, path = load_model(cfg.model, device)
    classes = check_model(model, x, y, device)
    facts = {
        "model_path": path,
        "model_sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "data_sha256": hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest(),
        "input_shape": list(x.shape[1:]),
        "input_dim": int(x[0].numel()),
        "classes": classes,
        "n": n,
        "n_available": available,
    }
    return Inputs(model, x, y, classes, facts)


def check_inputs(x: torch.Tensor) -> None:
    """x must be finite and inside X = [0, 1]^d."""
    if torch.isnan(x).any():
        raise ValueError("the data contain NaN inputs")
    if torch.isinf(x).any():
        raise ValueError("the data contain infinite inputs")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"inputs must lie in [0, 1]; found values in [{x.min():.4g}, {x.max():.4g}]")


def check_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> int:
    """Run one sample through the model; return K. Shape mismatches and bad labels raise ValueError."""
    try:
        with torch.no_grad():
            z = model(x[:1].to(device))
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(
            f"the model does not accept inputs of shape {tuple(x.shape[1:])} from the data: {first}"
        ) from None
    if z.ndim != 2:
        raise ValueError(f"the model must return logits of shape (N, K), got {tuple(z.shape)}")
    k = int(z.shape[1])
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"labels must lie in [0, {k}) for a {k}-class model; found [{y.min()}, {y.max()}]")
    return k
