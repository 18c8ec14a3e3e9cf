"""Device resolution shared by every public function that takes ``device=``."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device, or cuda when available, else cpu."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_device(device: str | torch.device | None) -> torch.device:
    """resolve_device, with a one-line ValueError for a malformed device or CUDA on a machine without it."""
    try:
        dev = resolve_device(device)
    except RuntimeError:
        raise ValueError(f"--device: unknown device {str(device)!r} (e.g. cpu, cuda, cuda:1)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    return dev
