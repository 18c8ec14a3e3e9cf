"""Options, list parsing and input loading shared by the `attack` and `certify` subcommands."""

from __future__ import annotations

from pathlib import Path

import torch
import typer
from torch import nn

from wdrobust._device import check_device
from wdrobust.evaluate.config import split_list
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


def comma_list(text: str, flag: str) -> tuple[str, ...]:
    """ "a, b" -> ("a", "b") with `evaluate`'s list parser; an empty item raises ValueError naming flag."""
    try:
        return split_list(text)
    except ValueError as exc:
        raise ValueError(f"{flag}: {exc}") from None


def load_inputs(
    model: Path, data: str, root: Path | None, split: str, n: int, device: str | None
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The model (eval mode) and the first n samples x (n, *S), y (n,) of the split, on one device,
    scaled and checked as for ``wdrobust evaluate`` (``evaluate.inputs.read_inputs``).

    Raises ValueError for a bad device, n < 1, no samples, inputs not finite or outside [0, 1], a model
    whose input shape is not the data's, and labels outside the model's classes.
    """
    dev = check_device(device)
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    inputs = read_inputs(model, data, split, root, n, dev)
    return inputs.model, inputs.x.to(dev), inputs.y.to(dev)
