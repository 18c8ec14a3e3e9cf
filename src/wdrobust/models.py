"""The bundled default model: an MLP 64 -> 128 -> 64 -> 10 with ReLU on digits, shipped inside the package.

The weights live in ``wdrobust/weights/digits-mlp.safetensors`` with their JSON sidecar (about 70 KB), so
``wdrobust evaluate`` with no arguments, the README's figures and the golden test of the demo use the same
weights on every machine: a model trained afresh differs per CPU, because torch's float32 kernels round
differently on AVX2, AVX-512 and AMX and training amplifies the difference. ``train_default_model``
retrains it with the recipe it was published with (``scripts/default_model.py`` rewrites the shipped file).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import torch

from wdrobust import nets
from wdrobust.train import TRAIN_DEFAULTS, FitResult, Progress, fit

#: The default model: an MLP 64 -> 128 -> 64 -> 10 with ReLU on digits, and its training options.
DEFAULT_DATA = "digits"
DEFAULT_ARCH = "mlp"
DEFAULT_ARCH_KWARGS: dict[str, Any] = {"widths": [128, 64], "activation": "relu"}
#: The recipe the default model was published with: ``train``'s defaults on the whole train split (no
#: validation split) at a constant learning rate.
DEFAULT_TRAIN: dict[str, Any] = {**TRAIN_DEFAULTS, "val_fraction": 0.0, "schedule": "constant"}
#: File name of the shipped checkpoint inside the package folder ``wdrobust/weights``.
DEFAULT_FILE = f"{DEFAULT_DATA}-{DEFAULT_ARCH}.safetensors"


def default_model_path() -> Path:
    """The shipped checkpoint of the default digits MLP (its sidecar lies beside it, ``nets.sidecar_path``).

    Raises FileNotFoundError when the package was installed without its weights."""
    path = Path(str(resources.files("wdrobust") / "weights" / DEFAULT_FILE))
    if not path.is_file() or not nets.sidecar_path(path).is_file():
        raise FileNotFoundError(f"the default model {path} is missing: reinstall wdrobust")
    return path


def train_default_model(
    device: str | torch.device | None = "cpu", progress: Progress | None = None
) -> FitResult:
    """The default digits MLP trained afresh with its published recipe (DEFAULT_ARCH_KWARGS, DEFAULT_TRAIN;
    about 1.5 s on one core). Its figures match the shipped model's to about a test digit, not bit for bit."""
    return fit(DEFAULT_DATA, DEFAULT_ARCH, arch_kwargs=DEFAULT_ARCH_KWARGS, device=device, progress=progress,
               **DEFAULT_TRAIN)  # fmt: skip
