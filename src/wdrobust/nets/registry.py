"""The architecture registry: ``build(arch, **kwargs)`` and the spec (arch + kwargs) each model carries."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from wdrobust._options import split_assignment
from wdrobust.nets import custom
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
    """Return arch if registered, else raise ValueError naming the choices (a sidecar's arch must be
    registered: a checkpoint never makes wdrobust import code)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHS)}")
    return arch


def constructor(arch: str) -> Callable[..., nn.Module]:
    """The constructor of a registered architecture or of a user's own ``SOURCE:Class`` (``nets.custom``,
    imported here); ValueError naming the choices for any other name."""
    if custom.is_custom(arch):
        return custom.load_class(arch)
    if arch not in ARCHS:
        raise ValueError(
            f"unknown architecture {arch!r}: expected one of {', '.join(ARCHS)}, or your own class as "
            "SOURCE:Class (e.g. my_net.py:Net)"
        )
    return ARCHS[arch]


def arch_options(arch: str) -> dict[str, Any]:
    """The keyword options of an architecture and their defaults, e.g. {'widths': (128, 64), ...}; an
    option of a user's class without default maps to ``inspect.Parameter.empty``."""
    params = inspect.signature(constructor(arch)).parameters
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {name: p.default for name, p in params.items() if p.kind not in variadic}


def display_name(arch: str) -> str:
    """The name of an architecture in results: a registered name, or the class name of ``SOURCE:Class``
    (no local path)."""
    return custom.class_name(arch) if custom.is_custom(arch) else arch


def _jsonable(value: Any) -> Any:
    """Tuples become lists (recursively) so that a spec survives a JSON round trip unchanged."""
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def build(arch: str, *, seed: int | None = None, **kwargs: Any) -> nn.Module:
    """Construct a registered architecture, or a user's ``SOURCE:Class``, with the given options; the
    model records its ModelSpec.

    seed: when given, the weights are initialised from torch.manual_seed(seed) inside a forked CPU RNG
    (the global RNG state is left untouched). Unknown options raise ValueError naming the accepted ones.
    """
    make = constructor(arch)
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
        model = make(**kwargs) if arch in ARCHS else _construct_custom(arch, make, kwargs)
    setattr(model, SPEC_ATTR, ModelSpec(arch, spec_kwargs))
    return model


def _construct_custom(arch: str, make: Callable[..., nn.Module], kwargs: dict[str, Any]) -> nn.Module:
    """A user's class constructed with kwargs; any failure of its code becomes a one-line ValueError."""
    try:
        return make(**kwargs)
    except Exception as exc:  # the user's code
        given = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "no options"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(
            f"--arch {arch} failed to construct with {given}: {type(exc).__name__}: {first} "
            "(give its options with --arch-option name=value)"
        ) from None


def class_axes(arch: str, **kwargs: Any) -> dict[str, int]:
    """The tensors of ``arch`` (built with ``kwargs``) whose shape follows num_classes, each with the axis of
    length num_classes (the output layer's: e.g. {"linear.weight": 0, "linear.bias": 0}), found by
    building the architecture with 2 and with 3 classes on the meta device (no memory allocated)."""
    kwargs = {k: v for k, v in kwargs.items() if k != "num_classes"}
    with torch.device("meta"):
        two, three = (build(arch, num_classes=k, **kwargs).state_dict() for k in (2, 3))
    axes = {}
    for key, a in two.items():
        changed = [i for i, (m, n) in enumerate(zip(a.shape, three[key].shape, strict=True)) if m != n]
        if len(changed) == 1 and (a.shape[changed[0]], three[key].shape[changed[0]]) == (2, 3):
            axes[key] = changed[0]
    return axes


def spec_of(model: nn.Module) -> ModelSpec:
    """The ModelSpec recorded by ``build``; ValueError for models built otherwise."""
    spec = getattr(model, SPEC_ATTR, None)
    if not isinstance(spec, ModelSpec):
        raise ValueError("model was not made by wdrobust.nets.build, so its architecture is unknown")
    return spec


def _option_value(default: Any, text: str, what: str) -> Any:
    """Parse ``text`` as the type of an option's default: true/false, an integer, a number, a string, a
    comma-separated list of integers (tuple defaults) or of numbers (None defaults: mean, std)."""
    try:
        if isinstance(default, bool):
            if text.strip().lower() not in ("true", "false"):
                raise ValueError
            return text.strip().lower() == "true"
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, str):
            return text
        items = [t for t in text.replace(" ", "").split(",") if t]
        if isinstance(default, tuple | list):
            return [int(t) for t in items]
        return [float(t) for t in items]
    except ValueError:
        kind = type(default).__name__ if default is not None else "list of numbers"
        raise ValueError(f"{what} expects a {kind}, got {text!r}") from None


def _literal(text: str) -> Any:
    """An option value without a typed default (a user's class): true/false, an integer, a number, a
    comma-separated list of integers or numbers, else the text itself."""
    if text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    items = [t for t in text.replace(" ", "").split(",") if t]
    for kind in (int, float):
        try:
            values = [kind(t) for t in items]
        except ValueError:
            continue
        if values:
            return values if "," in text else values[0]
    return text


def parse_arch_options(arch: str, items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """["widths=16,32", "num_classes=10"] -> {"widths": [16, 32], "num_classes": 10}: each value parsed as
    the type of the option's default (``arch_options``), or as a literal (``_literal``) for an option of a
    user's class without a typed default; unknown options raise ValueError naming them."""
    defaults = arch_options(arch)
    out: dict[str, Any] = {}
    for item in items:
        name, text = split_assignment(item, "--arch-option")
        if name not in defaults:
            raise ValueError(f"architecture {arch!r} has no option {name!r}: accepted {', '.join(defaults)}")
        default = defaults[name]
        untyped = arch not in ARCHS and (default is None or default is inspect.Parameter.empty)
        out[name] = _literal(text) if untyped else _option_value(default, text, f"--arch-option {name}")
    return out
