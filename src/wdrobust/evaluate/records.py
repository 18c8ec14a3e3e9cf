"""Per-sample records: a whole attack or certificate job over the N evaluated samples, joined from its
stored batches by the job objects (``evaluate.jobs``: ``AttackJob.from_arrays``,
``CertificateJob.from_arrays``, whose modules name the stored arrays)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wdrobust.primal.curves import Majorant
from wdrobust.primal.upper import UpperBounder


@dataclass
class AttackRecord:
    """A whole attack job over the N evaluated samples."""

    method: str
    eps: float
    p: float
    t: np.ndarray
    gains: dict[str, np.ndarray]
    flip_distance: np.ndarray | None
    seconds: float
    forward_passes: int
    backward_passes: int


@dataclass
class CertificateRecord:
    """A whole certificate job over the N evaluated samples."""

    method: str
    sound: bool
    majorants: dict[str, Majorant]
    certified_radius: np.ndarray | None
    lipschitz: np.ndarray | None
    cell_radius: np.ndarray | None
    seconds: float
    forward_passes: int
    backward_passes: int
    note: str = ""
    _bounders: dict[str, UpperBounder] = field(default_factory=dict, init=False, repr=False, compare=False)

    def bounder(self, loss: str) -> UpperBounder:
        """The upper-bound solver of this certificate's majorant for ``loss``, built once and reused for
        every threat model."""
        if loss not in self._bounders:
            self._bounders[loss] = UpperBounder(self.majorants[loss])
        return self._bounders[loss]

    @classmethod
    def of(cls, result: Any) -> CertificateRecord:
        """The record of a ``CertificateResult`` computed in memory (no store; no pass counts)."""
        return cls(
            result.method,
            result.sound,
            result.majorants,
            result.certified_radius,
            result.lipschitz,
            result.cell_radius,
            result.seconds,
            0,
            0,
            result.note,
        )
