"""Per-sample records: attack and certificate results <-> the named arrays stored per unit, and the
concatenation of a job's batches (padding columns so batches with different widths line up).

Array names
    clean:        index, y, correct, loss.<loss>
    attack:       t, gain.<loss>, flip_distance (optional), points (optional: candidate points (N, M, *S))
    certificate:  major.<loss>.knots, major.<loss>.slopes, major.<loss>.cap, certified_radius,
                  lipschitz, cell_radius (each optional)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wdrobust.primal.curves import Majorant, stack_points
from wdrobust.primal.upper import UpperBounder


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
