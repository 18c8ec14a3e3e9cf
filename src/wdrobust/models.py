"""The bundled default model: an MLP 64 -> 128 -> 64 -> 10 with ReLU on digits, trained on first use by
``train.fit`` with the recipe it was published with and cached in the user's cache folder.

The cache folder is $WDROBUST_CACHE, else $XDG_CACHE_HOME/wdrobust, else ~/.cache/wdrobust (the XDG
base-directory convention); a cached checkpoint is reused while its sidecar records today's architecture,
data set and training options, and retrained otherwise (about 1.5 s on one core). Training is
deterministic on CPU, so the checkpoint's bytes (the model_sha256 of results.json) are reproducible.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from wdrobust import nets
from wdrobust.train import TRAIN_DEFAULTS, Progress, fit

#: Environment variable naming the cache directory of the default model (else the user's cache folder,
#: $XDG_CACHE_HOME/wdrobust or ~/.cache/wdrobust).
CACHE_ENV = "WDROBUST_CACHE"
#: The default model: an MLP 64 -> 128 -> 64 -> 10 with ReLU on digits, and its training options.
DEFAULT_DATA = "digits"
DEFAULT_ARCH = "mlp"
DEFAULT_ARCH_KWARGS: dict[str, Any] = {"widths": [128, 64], "activation": "relu"}
#: The recipe the default model was published with: ``train``'s defaults on the whole train split (no
#: validation split) at a constant learning rate.
DEFAULT_TRAIN: dict[str, Any] = {**TRAIN_DEFAULTS, "val_fraction": 0.0, "schedule": "constant"}


def cache_dir() -> Path:
    """The user's cache folder of wdrobust: $WDROBUST_CACHE, else $XDG_CACHE_HOME/wdrobust, else
    ~/.cache/wdrobust (the XDG base-directory convention)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "wdrobust"


def default_model_path(cache: str | Path | None = None) -> Path:
    """Where the default digits MLP is cached: <cache>/digits-mlp.safetensors with cache = the argument,
    else ``cache_dir()``."""
    folder = Path(cache) if cache is not None else cache_dir()
    return folder / f"{DEFAULT_DATA}-{DEFAULT_ARCH}.safetensors"


def _is_current_default(path: Path) -> bool:
    """True when the cached checkpoint was trained with today's default architecture and options."""
    if not path.is_file():
        return False
    try:
        header = nets.load_metadata(path)
    except (OSError, ValueError):
        return False
    meta = header.get("metadata", {})
    kwargs = header.get("kwargs", {})
    return (
        header.get("arch") == DEFAULT_ARCH
        and meta.get("data") == DEFAULT_DATA
        and meta.get("train") == DEFAULT_TRAIN
        and all(kwargs.get(k) == v for k, v in DEFAULT_ARCH_KWARGS.items())
    )


def ensure_default_model(
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    cache: str | Path | None = None,
) -> Path:
    """The path of the default digits MLP checkpoint (see ``default_model_path``), training and saving it
    first unless a cached checkpoint with the current default options exists (about 1.5 s on one core)."""
    path = default_model_path(cache)
    if not _is_current_default(path):
        result = fit(
            DEFAULT_DATA,
            DEFAULT_ARCH,
            arch_kwargs=DEFAULT_ARCH_KWARGS,
            device=device,
            progress=progress,
            **DEFAULT_TRAIN,
        )
        nets.save(result.model, path, metadata=result.metadata)
    return path
