"""Saving and loading models: safetensors weights + a JSON sidecar, or plain torch state_dict files.

A checkpoint ``model.safetensors`` has its sidecar ``model.json`` (same stem) holding
{"format": "wdrobust.model", "version": 1, "arch": ..., "kwargs": {...}, "metadata": {...}} and, for a
model trained on tabular data, "input_scaling" (the feature scaling of its training file, applied to the
data it is evaluated on; see ``data.tabular.Scaling``); ``load`` rebuilds the architecture from it. Both
files get the usual permissions (0666 minus the umask). Before any weight is allocated, the
architecture is built on the meta device and its tensor shapes are compared with the checkpoint's (the
safetensors header), so an inconsistent sidecar is refused without building a huge model; a mismatch
names the first layer with both shapes. An architecture given without sidecar (a registered name or a
user's ``SOURCE:Class``, ``nets.custom``) takes its number of classes from the checkpoint's output layer
unless it is given. Plain ``.pt`` / ``.pth`` files are read with torch.load(weights_only=True), which
refuses every pickle that is not tensors in containers; a ``.pt`` / ``.pth`` TorchScript archive
(``torch.jit.save``) carries its architecture and is read with torch.jit.load; so does a ``torch.export``
archive (``torch.export.save``, any suffix, recognised by content: ``nets.exported``).
"""

from __future__ import annotations

import contextlib
import json
import pickle
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as serialize
from torch import nn

from wdrobust._atomic import atomic_write_all
from wdrobust._device import resolve_device
from wdrobust.nets.exported import is_exported, load_exported
from wdrobust.nets.registry import ARCHS, arch_options, build, check_arch, class_axes, spec_of

FORMAT = "wdrobust.model"
VERSION = 1
TORCH_SUFFIXES = (".pt", ".pth")
#: Keys under which training scripts commonly nest the state_dict in a checkpoint dict.
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net")


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of a checkpoint: same directory and stem, suffix ``.json``."""
    return Path(path).with_suffix(".json")


def save(
    model: nn.Module,
    path: str | Path,
    metadata: dict[str, Any] | None = None,
    input_scaling: dict[str, Any] | None = None,
) -> Path:
    """Write the model's weights to ``path`` (.safetensors) and its spec + metadata to the sidecar.

    The model must come from ``build`` (it carries its arch and kwargs). input_scaling: the JSON form of
    the feature scaling of tabular training data (``_serde.to_json`` of a ``data.Scaling``), if any. Both
    files are written atomically, both or neither (a full disk leaves no checkpoint, no sidecar, no
    temporary file); returns the checkpoint path.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"checkpoint path must end in .safetensors, got {str(path)!r}")
    spec = spec_of(model)
    header = {"format": FORMAT, "version": VERSION, "arch": spec.arch, "kwargs": spec.kwargs}
    header["metadata"] = metadata or {}
    if input_scaling is not None:
        header["input_scaling"] = input_scaling
    text = json.dumps(header, indent=2, sort_keys=True) + "\n"
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    weights = serialize(tensors)  # written by Python below: a full disk raises OSError (save_file does not)
    atomic_write_all(
        {path: lambda tmp: tmp.write_bytes(weights), sidecar_path(path): lambda tmp: tmp.write_text(text)}
    )
    return path


def load_metadata(path: str | Path) -> dict[str, Any]:
    """The sidecar of a checkpoint as a dict (format, version, arch, kwargs, metadata[, input_scaling]).

    arch must be registered and every kwargs field must have the type of the architecture's default;
    otherwise ValueError naming the sidecar and the field.
    """
    side = sidecar_path(path)
    if not side.is_file():
        raise FileNotFoundError(f"model sidecar {side} not found (it is written beside the weights by save)")
    try:
        header = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"model sidecar {side} is not valid JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or "arch" not in header:
        raise ValueError(f"model sidecar {side} is not a {FORMAT} file")
    if not isinstance(header["arch"], str):
        raise ValueError(f"model sidecar {side}: field arch must be a string, got {header['arch']!r}")
    try:
        check_arch(header["arch"])
    except ValueError as exc:
        raise ValueError(f"model sidecar {side}: {exc}") from None
    kwargs = header.setdefault("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ValueError(f"model sidecar {side}: field kwargs must be an object, got {kwargs!r:.60}")
    defaults = arch_options(header["arch"])
    for name, value in kwargs.items():
        what, ok = _expected(defaults.get(name))
        if name in defaults and not ok(value):
            raise ValueError(f"model sidecar {side}: field kwargs.{name} must be {what}, got {value!r:.60}")
    return header


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _expected(default: Any) -> tuple[str, Callable[[Any], bool]]:
    """(description, test) of the values a sidecar may give an option, judged by the option's default."""
    if isinstance(default, bool):
        return "true or false", lambda v: isinstance(v, bool)
    if isinstance(default, int):
        return "a positive integer", _positive_int
    if isinstance(default, str):
        return "a string", lambda v: isinstance(v, str)
    if isinstance(default, tuple | list):
        return "a list of positive integers", lambda v: isinstance(v, list) and all(map(_positive_int, v))
    return "null or a list of numbers", lambda v: v is None or (isinstance(v, list) and all(map(_number, v)))


def _reason(exc: Exception) -> str:
    """The informative sentence of torch's weights_only refusal (the text after 'WeightsUnpickler error:')."""
    text = str(exc).split("WeightsUnpickler error:")[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0].split(". ")[0] if lines else type(exc).__name__


def is_torchscript(path: str | Path) -> bool:
    """Whether a file is a TorchScript archive (torch.jit.save): a zip file with a constants.pkl record,
    which torch.save's zip files do not have."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def _load_torchscript(path: Path, device: str | torch.device | None) -> nn.Module:
    """A TorchScript archive loaded with torch.jit.load, in eval mode on ``device``."""
    dev = resolve_device(device)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, its files are not
            model = torch.jit.load(str(path), map_location=dev)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"cannot load {path} as TorchScript: {str(exc).strip().splitlines()[0]}") from None
    return model.eval()


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


def _check_shapes(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], path: Path, arch: str, hint: str
) -> None:
    """ValueError naming the first mismatching layer with both shapes (or the missing and unexpected keys)
    unless the checkpoint's tensor shapes are exactly the architecture's (``arch`` describes it; ``hint``
    ends the message)."""
    shape = [k for k in expected if k in found and expected[k] != found[k]]
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if shape:
        key = shape[0]
        what = f"wrong shape, layer {key}: checkpoint {found[key]}, architecture {expected[key]}"
        if len(shape) > 1:
            what += f" (and {len(shape) - 1} more layers)"
    elif missing or unexpected:
        what = f"missing {missing[:3]}, unexpected {unexpected[:3]}"
    else:
        return
    raise ValueError(f"{path} does not match architecture {arch}: {what}{hint}")


def _build_checked(
    arch: str, kwargs: dict[str, Any], shapes: dict[str, tuple[int, ...]], path: Path, sidecar: Path | None
) -> nn.Module:
    """Build ``arch`` after checking on the meta device (no memory allocated) that its tensors have
    ``shapes``; constructor errors name the sidecar the options came from (when they did), a mismatch of
    an architecture given without sidecar names the options it was built with. A user's class is
    built for real (its code may not run on the meta device) and returned after the check."""
    registered = arch in ARCHS
    try:
        with torch.device("meta") if registered else contextlib.nullcontext():
            skeleton = build(arch, **kwargs)
    except (TypeError, ValueError) as exc:
        if sidecar is None:
            raise
        raise ValueError(f"model sidecar {sidecar}: {str(exc).splitlines()[0]}") from None
    if sidecar is None:
        described = f"{arch!r}"
        options = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "its defaults"
        hint = f"; built with {options}: give the checkpoint's options with --arch-option name=value"
    else:
        described, hint = f"{arch!r} of sidecar {sidecar}", ""
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    _check_shapes(expected, shapes, path, described, hint)
    return build(arch, **kwargs) if registered else skeleton


def _with_num_classes(
    arch: str, kwargs: dict[str, Any], shapes: dict[str, tuple[int, ...]]
) -> dict[str, Any]:
    """kwargs with num_classes read from the checkpoint when not given: the length of the output layer's
    class axis (``class_axes``) in the checkpoint's tensor shapes; unchanged when they do not tell."""
    if "num_classes" in kwargs or "num_classes" not in arch_options(arch):
        return kwargs
    try:
        axes = class_axes(arch, **kwargs)
    except (TypeError, ValueError):  # bad options: _build_checked reports them
        return kwargs
    counts = {shapes[k][axis] for k, axis in axes.items() if k in shapes and len(shapes[k]) > axis}
    return kwargs | {"num_classes": counts.pop()} if len(counts) == 1 else kwargs


def _safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor shapes of a safetensors file, read from its header (no tensor is loaded)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"cannot read {path} as safetensors: {exc}") from None


def load(
    path: str | Path, device: str | torch.device | None = None, arch: str | None = None, **kwargs: Any
) -> nn.Module:
    """Rebuild a model from a checkpoint, in eval mode on ``device``.

    Weights: ``.safetensors``, or ``.pt`` / ``.pth`` holding a plain state_dict (read with
    weights_only=True; nested under state_dict/model_state_dict/model/net and 'module.' prefixes are
    accepted); an ONNX network (``.onnx`` / ``.onnx.gz``) is imported whole by ``nets.onnx``, a
    TorchScript archive (``.pt`` / ``.pth`` written by torch.jit.save) by torch.jit.load, a torch.export
    archive (any suffix, ``nets.exported``) by torch.export.load.
    Architecture: the sidecar's arch and kwargs when ``arch`` is None (``kwargs`` override them), else
    ``arch`` built with ``kwargs`` (num_classes, when not given, read from the checkpoint's output layer).
    Keys and shapes must match exactly (strict loading); they are compared before the model is allocated,
    and a mismatch names the first layer with both shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    if path.name.lower().endswith((".onnx", ".onnx.gz")):
        if arch is not None or kwargs:
            raise ValueError(f"{path} is an ONNX model: it carries its architecture (give no --arch)")
        from wdrobust.nets.onnx import load_onnx  # the onnx extra is optional

        return load_onnx(path, device)
    if is_exported(path):
        if arch is not None or kwargs:
            raise ValueError(f"{path} is a torch.export archive: it carries its architecture (no --arch)")
        return load_exported(path, device)
    if path.suffix in TORCH_SUFFIXES and is_torchscript(path):
        if arch is not None or kwargs:
            raise ValueError(f"{path} is a TorchScript archive: it carries its architecture (give no --arch)")
        return _load_torchscript(path, device)
    if path.suffix not in (".safetensors", *TORCH_SUFFIXES):
        raise ValueError(
            f"unknown model file type {path.suffix!r}: expected .safetensors, .pt, .pth, .onnx, .onnx.gz or "
            "a torch.export archive"
        )
    sidecar = None
    if arch is None:
        header = load_metadata(path)
        arch, kwargs, sidecar = header["arch"], {**header["kwargs"], **kwargs}, sidecar_path(path)
    if path.suffix == ".safetensors":
        shapes = _safetensors_shapes(path)
    else:
        state = _state_dict_from_torch_file(path)
        shapes = {k: tuple(v.shape) for k, v in state.items()}
    if sidecar is None:
        kwargs = _with_num_classes(arch, kwargs, shapes)
    model = _build_checked(arch, kwargs, shapes, path, sidecar)
    if path.suffix == ".safetensors":
        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise ValueError(f"cannot read {path} as safetensors: {exc}") from None
    model.load_state_dict(state, strict=True)
    return model.to(resolve_device(device)).eval()
