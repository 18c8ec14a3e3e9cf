"""Per-sample records: a whole attack or certificate job over the N evaluated samples, joined from its
stored batches by the job objects (``pipeline.jobs``: ``AttackJob.from_arrays``,
``CertificateJob.from_arrays``, whose modules name the stored arrays)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wdrobust.primal.curves import AttainedPoints, Majorant
from wdrobust.primal.flips import CertifiedRadii, FlipDistances, attained_growth, certified_growth


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

    def growth(self, loss: str, correct: np.ndarray) -> AttainedPoints | FlipDistances | None:
        """The growth it attained for ``loss`` (``primal.attained_growth``; correct: (N,) bool of the
        clean pass): FlipDistances for zero_one, AttainedPoints otherwise, None if not recorded."""
        return attained_growth(loss, self.t, self.gains, correct, self.flip_distance)

    @classmethod
    def of(cls, result: Any) -> AttackRecord:
        """The record of an ``AttackResult`` computed in memory (no store)."""
        return cls(
            result.attack,
            result.threat.eps,
            result.threat.p,
            result.t,
            result.gains,
            result.flip_distance,
            result.seconds,
            result.forward_passes,
            result.backward_passes,
        )


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

    def growth(self, loss: str, correct: np.ndarray) -> Majorant | CertifiedRadii | None:
        """Its growth majorant for ``loss`` (``primal.certified_growth``; correct: (N,) bool of the clean
        pass): CertifiedRadii for zero_one, the Majorant otherwise, None if it does not bound the loss."""
        return certified_growth(loss, self.majorants, self.certified_radius, correct, self.sound, self.method)

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

    @classmethod
    def of_growth(
        cls, method: str, loss: str, growth: Majorant | CertifiedRadii, **cost: Any
    ) -> CertificateRecord:
        """A record holding one growth majorant of ``loss`` (the inverse of ``growth``); cost: seconds,
        forward_passes, backward_passes and an optional note."""
        radius = growth.distances if isinstance(growth, CertifiedRadii) else None
        majorants = {} if radius is not None else {loss: growth}
        return cls(method, growth.sound, majorants, radius, None, None, **cost)
