"""``torch.export`` archives as models: a file written by ``torch.export.save`` (usually ``.pt2``), recognised
by its content (a zip file whose ``archive_format`` record says ``pt2``), loaded with ``torch.export.load``.

The exported program's module is a graph module that cannot switch between training and evaluation mode
(``eval()`` raises): it was captured in the mode it was exported in, so export the model in eval mode, with
a dynamic batch dimension (``dynamic_shapes=({0: torch.export.Dim("batch")},)``), or every batch size but
the example's is refused when the model runs. ``Exported`` wraps it so that the pipeline's ``eval()`` and
``requires_grad_(False)`` work; attacks run on it, certificates that read the layers refuse it as they
refuse a TorchScript module.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from torch import nn

from wdrobust._device import resolve_device

#: The record of a torch.export archive naming its format, and that format.
FORMAT_RECORD = "archive_format"
FORMAT = b"pt2"


class Exported(nn.Module):
    """A loaded ``torch.export`` program's module, (N, *S) -> (N, K); ``train``/``eval`` only set the flag
    (the graph keeps the mode it was exported in). Its architecture is recorded as ``original_name``,
    "torch.export" (the archive does not keep the exported class's name)."""

    original_name = "torch.export"

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.program = module

    def train(self, mode: bool = True) -> Exported:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)


def is_exported(path: str | Path) -> bool:
    """Whether a file is a torch.export archive: a zip file with an ``<archive>/archive_format`` record
    holding ``pt2``, which torch.save's and torch.jit.save's zip files do not have."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == FORMAT_RECORD]
        return any(archive.read(name).strip() == FORMAT for name in names)


def load_exported(path: str | Path, device: str | torch.device | None = None) -> nn.Module:
    """The module of a torch.export archive as ``Exported``, in eval mode on ``device``; ValueError naming
    the file when torch cannot load it (e.g. written by a newer torch)."""
    try:
        program = torch.export.load(str(path))
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot load {path} as a torch.export archive: {reason}") from None
    inputs = len(program.graph_signature.user_inputs)
    if inputs != 1:
        raise ValueError(f"{path}: the exported program takes {inputs} inputs; a classifier takes one batch")
    return Exported(program.module()).to(resolve_device(device)).eval()
