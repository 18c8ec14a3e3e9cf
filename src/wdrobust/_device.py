"""Device and CPU-thread helpers: device resolution shared by every public function that takes
``device=``, and the one-thread rule for small models on the CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

#: Below this many parameters a model runs on one CPU thread: its operations are too small for intra-op
#: parallelism to pay off and extra threads only contend (the default MLP: 2.4 s on one thread, 50-90 s
#: on two threads of a loaded 2-core machine).
SINGLE_THREAD_PARAMS = 1_000_000


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


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with torch's CPU thread count set to threads (0: left as it is); the previous count
    is restored afterwards."""
    if threads <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_threads_for(model: nn.Module, device: torch.device) -> contextlib.AbstractContextManager[None]:
    """The block with torch's CPU thread count set to 1 when a small model works on the CPU (fewer than
    SINGLE_THREAD_PARAMS parameters), left as it is otherwise (``torch_threads``)."""
    small = sum(p.numel() for p in model.parameters()) < SINGLE_THREAD_PARAMS
    return torch_threads(1 if device.type == "cpu" and small else 0)
