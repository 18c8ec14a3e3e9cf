"""The job interface: one kind of computation applied to every batch of the evaluated samples.

A job has a stable ``key`` (its name in the store), a ``spec`` (its JSON description in the store's
``jobs`` table) and ``run``, which computes one unit (the job on one batch) into named arrays and info.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from wdrobust.pipeline.config import EvalConfig
from wdrobust.pipeline.inputs import Inputs

#: A unit's arrays (stored per batch) and info (passes, sound flag, note, seconds).
UnitOutput = tuple[dict[str, np.ndarray], dict[str, Any]]


@dataclass(frozen=True)
class UnitTask:
    """One unit to compute: the batch ``sl`` of ``inputs`` under ``cfg``, the unit's seed and device, and
    for a job that ``reads_visited`` the attacks' candidate points of these samples (n, M, *S)."""

    cfg: EvalConfig
    inputs: Inputs
    sl: slice
    seed: int
    device: torch.device
    visited: torch.Tensor | None = None

    def samples(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's x (n, *S) and y (n,) on the unit's device."""
        return self.inputs.x[self.sl].to(self.device), self.inputs.y[self.sl].to(self.device)


class Job(ABC):
    """One kind of computation applied to every batch: ``kind`` in {clean, attack, certificate}."""

    kind: ClassVar[str] = ""
    method: str

    @property
    @abstractmethod
    def key(self) -> str:
        """Stable name used in the store, e.g. ``attack/wda/linf/eps=0.05/p=2``."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """JSON description stored in the ``jobs`` table."""

    @property
    def reads_visited(self) -> bool:
        """Whether ``run`` needs the attacks' candidate points of its batch (``visited``)."""
        return False

    @abstractmethod
    def run(self, task: UnitTask) -> UnitOutput:
        """Run the job on the unit's samples; return its arrays and info (passes, sound flag, note)."""


def as_float64(a: Any) -> np.ndarray:
    """Result arrays (numpy, see AttackResult / CertificateResult) as float64."""
    return np.asarray(a, dtype=np.float64)


def optional(batches: list[dict[str, np.ndarray]], name: str) -> np.ndarray | None:
    """The arrays ``name`` of every batch concatenated, or None when a batch lacks it."""
    if not all(name in b for b in batches):
        return None
    return np.concatenate([b[name] for b in batches])
