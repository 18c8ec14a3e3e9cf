"""The architecture registry: ``build(arch, **kwargs)`` and the spec (arch + kwargs) each model carries."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from wdrobust.nets.cnn import SmallCNN
from wdrobust.nets.mlp import MLP
from wdrobust.nets.resnet import preact_resnet18, resnet18
from wdrobust.nets.vit import VisionTransformer
from wdrobust.nets.wide_resnet import WideResNet

#: Architecture name -> constructor. Every constructor takes input_shape, num_classes, activation,
#: mean and std (optional input normalisation) plus its own options (see ``arch_options``).
ARCHS: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
    "cnn": SmallCNN,
    "resnet18": resnet18,
    "preact_resnet18": preact_resnet18,
    "wide_resnet": WideResNet,
    "vit_tiny": VisionTransformer,
}

#: Attribute under which ``build`` stores the ModelSpec on the model (read by ``save``).
SPEC_ATTR = "wdrobust_spec"


@dataclass(frozen=True)
class ModelSpec:
    """What rebuilds a model: the registry name and the JSON-serialisable constructor kwargs."""

    arch: str
    kwargs: dict[str, Any]


def check_arch(arch: str) -> str:
    """Return arch if registered, else raise ValueError naming the choices."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHS)}")
    return arch


def arch_options(arch: str) -> dict[str, Any]:
    """The keyword options of an architecture and their defaults, e.g. {'widths': (128, 64), ...}."""
    params = inspect.signature(ARCHS[check_arch(arch)]).parameters
    return {name: p.default for name, p in params.items()}


def _jsonable(value: Any) -> Any:
    """Tuples become lists (recursively) so that a spec survives a JSON round trip unchanged."""
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def build(arch: str, *, seed: int | None = None, **kwargs: Any) -> nn.Module:
    """Construct a registered architecture with the given options; the model records its ModelSpec.

    seed: when given, the weights are initialised from torch.manual_seed(seed) inside a forked CPU RNG
    (the global RNG state is left untouched). Unknown options raise ValueError naming the accepted ones.
    """
    options = arch_options(arch)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ValueError(
            f"architecture {arch!r} has no option {', '.join(unknown)}: accepted {', '.join(options)}"
        )
    spec_kwargs = {k: _jsonable(v) for k, v in kwargs.items()}
    try:
        json.dumps(spec_kwargs)
    except TypeError as exc:
        raise ValueError(
            f"architecture options must be JSON values (numbers, strings, lists): {exc}"
        ) from None
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = ARCHS[arch](**kwargs)
    setattr(model, SPEC_ATTR, ModelSpec(arch, spec_kwargs))
    return model


def spec_of(model: nn.Module) -> ModelSpec:
    """The ModelSpec recorded by ``build``; ValueError for models built otherwise."""
    spec = getattr(model, SPEC_ATTR, None)
    if not isinstance(spec, ModelSpec):
        raise ValueError("model was not made by wdrobust.nets.build, so its architecture is unknown")
    return spec
