"""The checkpoints the documentation scripts measure, trained with `wdrobust train` when missing.

They are trained with the recipe their published figures were measured with: the CLI's defaults before
the validation split and the cosine schedule (50 epochs, constant Adam learning rate 1e-3, no validation
split), so that a rerun on a fresh clone reproduces the docs' tables.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

from wdrobust import data, nets

#: The digits MLP 64-32-32-10 (ReLU) of the certificate tables (small enough for the MILP certificates).
DIGITS_MLP_32 = Path("runs/models/digits-mlp-32x32.safetensors")

PUBLISHED_RECIPE = ["--epochs", "50", "--lr", "0.001", "--schedule", "constant", "--val-fraction", "0"]


def ensure_trained(path: Path, args: list[str]) -> Path:
    """``path``, trained first by ``wdrobust train --out path -q --device cpu PUBLISHED_RECIPE args`` when
    it does not exist (``args`` may override the recipe)."""
    if not path.exists():
        cli = Path(sys.executable).with_name("wdrobust")
        cmd = [str(cli), "train", "--out", str(path), "-q", "--device", "cpu", *PUBLISHED_RECIPE, *args]
        subprocess.run(cmd, check=True)
    return path


def digits_mlp_32(n: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """DIGITS_MLP_32 (trained first when missing) on cpu in eval mode, on one torch thread, and the first n
    digits test samples x (n, 1, 8, 8), y (n,)."""
    ensure_trained(DIGITS_MLP_32, ["--widths", "32,32"])
    torch.set_num_threads(1)
    model = nets.load(DIGITS_MLP_32, device="cpu").eval()
    x, y = data.load("digits", "test")
    return model, x[:n], y[:n]
