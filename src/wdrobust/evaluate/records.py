"""Per-sample records: attack and certificate results <-> the named arrays stored per unit, and the
concatenation of a job's batches (padding columns so batches with different widths line up).

Array names
    clean:        index, y, correct, loss.<loss>
    attack:       t, gain.<loss>, flip_distance (optional), points (optional: candidate points (N, M, *S))
    certificate:  major.<loss>.knots, major.<loss>.slopes, major.<loss>.cap, certified_radius,
                  lipschitz, cell_radius (each optional)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wdrobust.primal.curves import AttainedPoints, Majorant, stack_points
from wdrobust.primal.flips import CertifiedRadii, FlipDistances, attained_growth, certified_growth


def _np(a: np.ndarray) -> np.ndarray:
    """Result arrays (numpy, see AttackResult / CertificateResult) as float64."""
    return np.asarray(a, dtype=np.float64)


def attack_arrays(result: Any) -> dict[str, np.ndarray]:
    """Arrays of an ``AttackResult``: candidate distances t (N, M), gains per loss, flip distances."""
    out = {"t": _np(result.t)}
    out.update({f"gain.{k}": _np(v) for k, v in result.gains.items()})
    if result.flip_distance is not None:
        out["flip_distance"] = _np(result.flip_distance)
    if result.points is not None:  # kept when the configuration asks (EvalConfig.stores_points), float32
        out["points"] = result.points.detach().cpu().float().numpy()
    return out


def certificate_arrays(result: Any) -> dict[str, np.ndarray]:
    """Arrays of a ``CertificateResult``: majorants (knots, slopes, cap, jumps) per loss and per-sample
    radii."""
    out: dict[str, np.ndarray] = {}
    for loss, maj in result.majorants.items():
        out[f"major.{loss}.knots"] = maj.knots
        out[f"major.{loss}.slopes"] = maj.slopes
        out[f"major.{loss}.cap"] = maj.cap
        out[f"major.{loss}.jumps"] = maj.jumps
    for name in ("certified_radius", "lipschitz", "cell_radius"):
        value = getattr(result, name)
        if value is not None:
            out[name] = _np(value)
    return out


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


def _optional(batches: list[dict[str, np.ndarray]], name: str) -> np.ndarray | None:
    if not all(name in b for b in batches):
        return None
    return np.concatenate([b[name] for b in batches])


def join_attack(spec: dict, batches: list[dict[str, np.ndarray]], units: list) -> AttackRecord:
    """One AttackRecord from the job's per-batch arrays (in batch order) and its stored units."""
    losses = sorted({k[5:] for b in batches for k in b if k.startswith("gain.")})
    t = None
    gains = {}
    for loss in losses:
        t, gains[loss] = stack_points([(b["t"], b[f"gain.{loss}"]) for b in batches])
    if t is None:
        t, _ = stack_points([(b["t"], b["t"]) for b in batches])
    return AttackRecord(
        method=spec["method"],
        eps=float(spec["eps"]),
        p=float(spec["p"]),
        t=t,
        gains=gains,
        flip_distance=_optional(batches, "flip_distance"),
        seconds=sum(u.seconds for u in units),
        forward_passes=sum(u.forward_passes for u in units),
        backward_passes=sum(u.backward_passes for u in units),
    )


def join_certificate(spec: dict, batches: list[dict[str, np.ndarray]], units: list) -> CertificateRecord:
    """One CertificateRecord from the job's per-batch arrays (in batch order) and its stored units."""
    sound = all(u.info.get("sound", False) for u in units)
    losses = sorted({k.split(".")[1] for b in batches for k in b if k.startswith("major.")})
    majorants = {
        loss: Majorant.stack(
            [
                Majorant(
                    b[f"major.{loss}.knots"],
                    b[f"major.{loss}.slopes"],
                    b[f"major.{loss}.cap"],
                    sound=sound,
                    name=f"{spec['method']}:{loss}",
                    jumps=b.get(f"major.{loss}.jumps"),
                )
                for b in batches
            ]
        )
        for loss in losses
    }
    notes = dict.fromkeys(u.info.get("note", "") for u in units if u.info.get("note"))
    return CertificateRecord(
        method=spec["method"],
        sound=sound,
        majorants=majorants,
        certified_radius=_optional(batches, "certified_radius"),
        lipschitz=_optional(batches, "lipschitz"),
        cell_radius=_optional(batches, "cell_radius"),
        seconds=sum(u.seconds for u in units),
        forward_passes=sum(u.forward_passes for u in units),
        backward_passes=sum(u.backward_passes for u in units),
        note="; ".join(notes),
    )
