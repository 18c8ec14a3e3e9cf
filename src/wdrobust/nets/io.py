"""Saving and loading models: safetensors weights + a JSON sidecar, or plain torch state_dict files.

A checkpoint ``model.safetensors`` has its sidecar ``model.json`` (same stem) holding
{"format": "wdrobust.model", "version": 1, "arch": ..., "kwargs": {...}, "metadata": {...}}; ``load``
rebuilds the architecture from it. Plain ``.pt`` / ``.pth`` files are read with
torch.load(weights_only=True), which refuses every pickle that is not tensors in containers.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from wdrobust._atomic import atomic_write
from wdrobust._device import resolve_device
from wdrobust.nets.registry import build, spec_of

FORMAT = "wdrobust.model"
VERSION = 1
TORCH_SUFFIXES = (".pt", ".pth")
#: Keys under which training scripts commonly nest the state_dict in a checkpoint dict.
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net")


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of a checkpoint: same directory and stem, suffix ``.json``."""
    return Path(path).with_suffix(".json")


def save(model: nn.Module, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write the model's weights to ``path`` (.safetensors) and its spec + metadata to the sidecar.

    The model must come from ``build`` (it carries its arch and kwargs). Both files are written
    atomically (weights first); returns the checkpoint path.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"checkpoint path must end in .safetensors, got {str(path)!r}")
    spec = spec_of(model)
    header = {"format": FORMAT, "version": VERSION, "arch": spec.arch, "kwargs": spec.kwargs}
    header["metadata"] = metadata or {}
    text = json.dumps(header, indent=2, sort_keys=True) + "\n"
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))
    atomic_write(sidecar_path(path), lambda tmp: tmp.write_text(text))
    return path


def load_metadata(path: str | Path) -> dict[str, Any]:
    """The sidecar of a checkpoint as a dict (format, version, arch, kwargs, metadata)."""
    side = sidecar_path(path)
    if not side.is_file():
        raise FileNotFoundError(f"model sidecar {side} not found (it is written beside the weights by save)")
    try:
        header = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"model sidecar {side} is not valid JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or "arch" not in header:
        raise ValueError(f"model sidecar {side} is not a {FORMAT} file")
    return header


def _reason(exc: Exception) -> str:
    """The informative sentence of torch's weights_only refusal (the text after 'WeightsUnpickler error:')."""
    text = str(exc).split("WeightsUnpickler error:")[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0].split(". ")[0] if lines else type(exc).__name__


def _state_dict_from_torch_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a plain state_dict (possibly nested under a common key, possibly 'module.'-prefixed)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"refusing to load {path}: not a plain tensor state_dict ({_reason(exc)})") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ValueError(f"cannot read {path} as a torch file: {str(exc).splitlines()[0]}") from None
    if isinstance(obj, dict):
        for key in NESTED_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state_dict (a dict of tensors)")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return obj


def _load_weights(model: nn.Module, state: dict[str, torch.Tensor], path: Path, arch: str) -> None:
    """load_state_dict(strict=True) with a one-line ValueError naming the first mismatching keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or shape:
        raise ValueError(
            f"{path} does not match architecture {arch!r}: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, wrong shape {shape[:3]}"
        )
    model.load_state_dict(state, strict=True)


def load(
    path: str | Path, device: str | torch.device | None = None, arch: str | None = None, **kwargs: Any
) -> nn.Module:
    """Rebuild a model from a checkpoint, in eval mode on ``device``.

    Weights: ``.safetensors``, or ``.pt`` / ``.pth`` holding a plain state_dict (read with
    weights_only=True; nested under state_dict/model_state_dict/model/net and 'module.' prefixes are
    accepted). Architecture: the sidecar's arch and kwargs when ``arch`` is None (``kwargs`` override
    them), else ``arch`` built with ``kwargs``. Keys and shapes must match exactly (strict loading).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    if path.suffix not in (".safetensors", *TORCH_SUFFIXES):
        raise ValueError(f"unknown model file type {path.suffix!r}: expected .safetensors, .pt or .pth")
    if arch is None:
        header = load_metadata(path)
        arch, kwargs = header["arch"], {**header.get("kwargs", {}), **kwargs}
    if path.suffix == ".safetensors":
        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise ValueError(f"cannot read {path} as safetensors: {exc}") from None
    else:
        state = _state_dict_from_torch_file(path)
    model = build(arch, **kwargs)
    _load_weights(model, state, path, arch)
    return model.to(resolve_device(device)).eval()
