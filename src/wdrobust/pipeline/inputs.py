"""Loading and checking a model and the data it is run on, before anything is written.

Shared by ``wdrobust evaluate``, ``attack`` and ``certify``. A data file is used whole (its x_test, y_test
when it gives splits), subject to n, offset and indices. The data are scaled like the model's training
data: a tabular file gets the feature scaling stored in the model's sidecar (``input_scaling``), so a file
holding some of the model's classes, or other feature ranges, is not rescaled on its own. K is the
model's number of outputs, never the data's largest label. Every check raises ValueError with a one-line
message: unknown data or model, NaN inputs, inputs outside [0, 1] (with a hint at --mean/--std), a radius
beyond the diameter of [0, 1]^d (``ThreatModel.check_radius``), a model that does not accept the data's
input shape (naming both shapes), labels the model has no output for. A model whose outputs look like
probabilities (every checked row non-negative, summing to 1) gets a warning: margins and cross-entropy
are defined on logits.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wdrobust import data, nets
from wdrobust._device import resolve_device
from wdrobust._serde import from_json
from wdrobust.data import Scaling
from wdrobust.data.indices import read_indices
from wdrobust.data.tabular import quote_values
from wdrobust.models import default_model_path
from wdrobust.nets.io import TORCH_SUFFIXES
from wdrobust.nets.registry import SPEC_ATTR
from wdrobust.pipeline.config import DEFAULT_MODEL, EvalConfig
from wdrobust.threat import ThreatModel

#: How many samples ``check_model`` runs through the model (its outputs' shape, labels, probabilities).
CHECKED_SAMPLES = 16
#: Tolerance of "the row sums to 1" in the probability check.
SUM_TOLERANCE = 1e-4


@dataclass
class Inputs:
    """The model (eval mode, on device), the selected n samples of the split on the CPU: x (n, *S), y (n,),
    K, the checkpoint path (None for a model given from Python), the size of the whole split and
    (evaluate) the facts recorded in the store."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    classes: int
    path: Path | None
    available: int
    facts: dict[str, Any] = field(default_factory=dict)


def model_path(name: str) -> Path:
    """The checkpoint of the bundled default (shipped in the package) or of a path."""
    if name == DEFAULT_MODEL:
        return default_model_path()
    path = Path(name)
    if not path.exists():
        raise ValueError(f"unknown model {name!r}: not {DEFAULT_MODEL!r} and no such checkpoint file")
    return path


def model_scaling(path: str | Path) -> Scaling | None:
    """The feature scaling of a model's tabular training data, from its sidecar; None if it has none."""
    value = nets.load_metadata(path).get("input_scaling")
    return None if value is None else from_json(Scaling, value, f"{nets.sidecar_path(path)}: input_scaling")


def load_model(
    path: str | Path,
    device: str | torch.device | None,
    *,
    arch: str | None = None,
    arch_options: dict[str, Any] | None = None,
    normalization: tuple[list[float], list[float]] | None = None,
    input_shape: tuple[int, ...] = (),
    num_classes: int | None = None,
) -> nn.Module:
    """The model of a checkpoint in eval mode: rebuilt from its sidecar, or (``arch`` given, for a plain
    .pt/.pth state_dict without one) built as ``arch`` (registered, or a user's ``SOURCE:Class``) with
    input_shape (the data's) and num_classes (given, else the checkpoint's output layer's, ``nets.load``)
    when it takes them, and ``arch_options``; a TorchScript or torch.export archive as saved. Wrapped as
    ``nets.normalized(model, mean, std)`` when ``normalization`` is given. A .pt/.pth state_dict without
    sidecar and without arch raises ValueError saying what to give."""
    path = Path(path)
    plain = path.suffix in TORCH_SUFFIXES and not nets.sidecar_path(path).is_file()
    if arch is None and plain and not (nets.is_torchscript(path) or nets.is_exported(path)):
        raise ValueError(
            f"{path} is a plain torch checkpoint without a {nets.sidecar_path(path).name} sidecar: give its "
            f"architecture with --arch NAME ({', '.join(nets.ARCHS)}) or --arch SOURCE:Class (your own "
            "module) and --arch-option name=value"
        )
    if arch is None:
        model = nets.load(path, device=device)
    else:
        accepted = nets.arch_options(arch)  # a user's class gets input_shape, num_classes if it takes them
        data = {"input_shape": list(input_shape), "num_classes": num_classes}
        kwargs = {k: v for k, v in data.items() if k in accepted} | dict(arch_options or {})
        model = nets.load(
            path, device=device, arch=arch, **{k: v for k, v in kwargs.items() if v is not None}
        )
    if normalization is not None:
        spec = getattr(model, SPEC_ATTR, None)
        model = nets.normalized(model, *normalization, ndim=len(input_shape) + 1).to(resolve_device(device))
        if spec is not None:
            setattr(model, SPEC_ATTR, spec)
    return model.eval()


def load_inputs(
    path: str | Path,
    data_name: str,
    split: str,
    root: str | Path | None,
    n: int,
    device: str | torch.device | None,
    *,
    offset: int = 0,
    indices: np.ndarray | None = None,
    threats: Sequence[ThreatModel] = (),
    **model_options: Any,
) -> Inputs:
    """The one loader of a model and its data (``evaluate``, ``attack``, ``certify``): the model at the
    checkpoint ``path`` (``load_model`` with model_options: arch, arch_options, normalization) and samples
    offset .. offset + n - 1 of a split (or the listed ``indices``, in their order), scaled for it; both
    checked (module docstring), the samples and the ``threats`` they will be run with before the model is
    loaded."""
    scaling = model_scaling(path) if nets.sidecar_path(path).is_file() else None
    x, y = data.load(data_name, split, root=root, device="cpu", scaling=scaling)
    available = int(x.shape[0])
    if available == 0:
        raise ValueError(f"data {data_name!r} split {split!r} is empty")
    if indices is not None:
        if int(indices.max()) >= available:
            raise ValueError(
                f"sample index {int(indices.max())} is out of range: split {split!r} has {available} samples"
            )
        pick: slice | torch.Tensor = torch.from_numpy(indices)
    elif offset >= available:
        raise ValueError(f"offset {offset} is beyond the {available} samples of split {split!r}")
    else:
        pick = slice(offset, offset + n)
    x = torch.as_tensor(x[pick], dtype=torch.float32)
    y = torch.as_tensor(y[pick]).long()
    check_samples(x, threats)  # before the model is loaded
    model = load_model(path, device, input_shape=tuple(x.shape[1:]), **model_options)
    return checked_inputs(model, x, y, Path(path), available, device, threats)


def checked_inputs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    path: Path | None,
    available: int,
    device: str | torch.device | None,
    threats: Sequence[ThreatModel] = (),
) -> Inputs:
    """Inputs of a model (eval mode) and samples x (n, *S), y (n,) after every check of this module (the
    radii of ``threats`` against the samples' dimension)."""
    check_samples(x, threats)
    check_input_shape(model, x)
    classes = check_model(model, x, y, resolve_device(device))
    return Inputs(model, x, y, classes, path, available)


def sample_facts(inputs: Inputs) -> dict[str, Any]:
    """The facts about the evaluated samples recorded in the store: their hash, shape, K and counts."""
    x, y = inputs.x, inputs.y
    return {
        "data_sha256": hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest(),
        "input_shape": list(x.shape[1:]),
        "input_dim": int(x[0].numel()),
        "classes": inputs.classes,
        "n": int(x.shape[0]),
        "n_available": inputs.available,
    }


def model_arch(model: nn.Module) -> str:
    """The architecture a model records (``nets.build``), else its class name (a user's module; a
    TorchScript module's original class)."""
    spec = getattr(model, SPEC_ATTR, None)
    if spec is not None:
        return nets.display_name(spec.arch)
    return str(getattr(model, "original_name", type(model).__name__))


def evaluation_inputs(cfg: EvalConfig, device: torch.device) -> Inputs:
    """``load_inputs`` of an evaluation's model (a checkpoint or the bundled default, ``model_path``) and
    samples, with the facts it records (hashes of checkpoint and samples)."""
    inputs = load_inputs(
        model_path(cfg.model),
        cfg.data,
        cfg.split,
        cfg.data_root,
        cfg.n,
        device,
        offset=cfg.offset,
        indices=None if cfg.indices is None else read_indices(cfg.indices),
        threats=cfg.threats(),
        arch=cfg.arch,
        arch_options=cfg.arch_options,
        normalization=cfg.normalization,
    )
    inputs.facts = {
        "model_path": str(inputs.path),
        "model_sha256": hashlib.sha256(inputs.path.read_bytes()).hexdigest(),
        "model_arch": nets.display_name(cfg.arch) if cfg.arch else model_arch(inputs.model),
        **sample_facts(inputs),
    }
    return inputs


def check_input_shape(model: nn.Module, x: torch.Tensor) -> None:
    """ValueError when the model records an input shape (nets.build) with another number of values than
    the data's sample shape (the same values in another layout, e.g. (64,) for (1, 8, 8), pass on to the
    model, which may flatten them)."""
    spec = getattr(model, SPEC_ATTR, None)
    expected = None if spec is None else spec.kwargs.get("input_shape")
    shape = tuple(x.shape[1:])
    if expected is not None and math.prod(expected) != math.prod(shape):
        raise ValueError(f"the model expects inputs of shape {tuple(expected)}, the data's are {shape}")


def check_inputs(x: torch.Tensor) -> None:
    """x must be finite and inside X = [0, 1]^d."""
    if torch.isnan(x).any():
        raise ValueError("the data contain NaN inputs")
    if torch.isinf(x).any():
        raise ValueError("the data contain infinite inputs")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"inputs must lie in [0, 1]; found values in [{x.min():.4g}, {x.max():.4g}]: give the raw data "
            "and the model's normalisation with --mean/--std (in Python: nets.normalized(model, mean, std))"
        )


def check_samples(x: torch.Tensor, threats: Sequence[ThreatModel] = ()) -> None:
    """``check_inputs`` and every threat's radius against the dimension d of the samples x (n, *S)."""
    check_inputs(x)
    for threat in threats:
        threat.check_radius(int(x[0].numel()))


def check_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> int:
    """Run the first CHECKED_SAMPLES samples through the model; return K, its number of outputs. Shape
    mismatches and labels >= K raise ValueError; outputs that look like probabilities warn."""
    try:
        with torch.no_grad():
            z = model(x[:CHECKED_SAMPLES].to(device))
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(
            f"the model does not accept inputs of shape {tuple(x.shape[1:])} from the data: {first}"
        ) from None
    if z.ndim != 2:
        raise ValueError(f"the model must return logits of shape (N, K), got {tuple(z.shape)}")
    k = int(z.shape[1])
    bad = torch.unique(y[(y < 0) | (y >= k)]).tolist()
    if bad:
        found = f"labels must lie in [0, {k}); the data hold labels {quote_values(bad)}"
        top = int(y.max())
        raise ValueError(
            f"the model has {k} outputs, the labels go up to {top}: {found}" if top >= k else found
        )
    if looks_like_probabilities(z):
        warnings.warn(
            "the model's outputs look like probabilities (non-negative, each row summing to 1): margins and "
            "cross-entropy are computed on logits, so they would be wrong; pass the logits (e.g. drop the "
            "final softmax)",
            stacklevel=2,
        )
    return k


def looks_like_probabilities(z: torch.Tensor) -> bool:
    """Whether every row of the outputs z (n, K), K >= 2, is non-negative and sums to 1."""
    z = z.detach().double()
    return z.shape[1] >= 2 and bool((z >= 0).all() and ((z.sum(1) - 1).abs() <= SUM_TOLERANCE).all())
