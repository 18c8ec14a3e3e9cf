"""Options and input loading shared by the `attack` and `certify` subcommands."""

from __future__ import annotations

from pathlib import Path

import torch
import typer
from torch import nn

from wdrobust._device import resolve_device
from wdrobust.evaluate.inputs import read_inputs
from wdrobust.threat import NORMS

MODEL = typer.Option(..., help="Checkpoint (.safetensors with its sidecar, or .pt/.pth).")
DATA = typer.Option("digits", help="digits, mnist, cifar10, cifar100, or a .npz/.csv file.")
ROOT = typer.Option(None, help="Folder of the mnist/cifar files.")
SPLIT = typer.Option("test", help="Data split.")
NORM = typer.Option("linf", help=f"Threat norm: {', '.join(NORMS)}.")
EPS = typer.Option("0.1", help="Radius (e.g. 0.1 or 8/255).")
P = typer.Option("inf", help="Wasserstein order p in [1, inf].")
BATCH_SIZE = typer.Option(256, help="Samples per batch.")
DEVICE = typer.Option(None, help="cpu, cuda, ... (default: cuda if available).")


def load_inputs(
    model: Path, data: str, root: Path | None, split: str, n: int, device: str | None
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The model (eval mode) and the first n samples x (n, *S), y (n,) of the split, on one device,
    scaled and checked as for ``wdrobust evaluate`` (``evaluate.inputs.read_inputs``)."""
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    inputs = read_inputs(model, data, split, root, n, device)
    dev = resolve_device(device)
    return inputs.model, inputs.x.to(dev), inputs.y.to(dev)
