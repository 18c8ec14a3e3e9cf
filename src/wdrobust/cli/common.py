"""Options, list parsing and input loading shared by the `attack` and `certify` subcommands."""

from __future__ import annotations

from pathlib import Path

import torch
import typer
from torch import nn

from wdrobust import data as datasets
from wdrobust import nets
from wdrobust._device import check_device
from wdrobust.evaluate.config import split_list
from wdrobust.evaluate.inputs import check_inputs, check_model
from wdrobust.nets.registry import SPEC_ATTR
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


def check_input_shape(model: nn.Module, x: torch.Tensor) -> None:
    """ValueError when the model records an input shape (nets.build) other than the data's sample shape."""
    spec = getattr(model, SPEC_ATTR, None)
    expected = None if spec is None else spec.kwargs.get("input_shape")
    shape = tuple(x.shape[1:])
    if expected is not None and tuple(expected) != shape:
        raise ValueError(
            f"the model expects inputs of shape {tuple(expected)} but the data have shape {shape}"
        )


def load_inputs(
    model: Path, data: str, root: Path | None, split: str, n: int, device: str | None
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The model (eval mode) and the first n samples x (n, *S), y (n,) of the split, on one device.

    Raises ValueError for a bad device, n < 1, no samples, inputs not finite or outside [0, 1], a model
    whose input shape is not the data's, and labels outside the model's classes.
    """
    dev = check_device(device)
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    net = nets.load(model, device=dev)
    x, y = datasets.load(data, split, root=root, device=dev)
    x, y = x[:n], y[:n]
    if x.shape[0] == 0:
        raise ValueError(f"data {data!r} split {split!r} is empty")
    check_inputs(x)
    check_input_shape(net, x)
    check_model(net, x, y, dev)
    return net, x, y
