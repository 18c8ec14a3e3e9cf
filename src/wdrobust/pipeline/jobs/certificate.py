"""Certificate jobs: one per certificate. A certificate's majorants phibar_i(t) bound the growth for every
t in [0, diam X], hence serve every (eps, p): the job runs with the union of the default shell radii of
all configured eps (knots at eps/4, eps/2, eps of every eps, ``certificate_radii``) unless the
certificate's options give ``radii``; other options a threat radius suggests (``options_for``, e.g. milp's
``milp_radius``) come from the largest eps.

Arrays: major.<loss>.knots, major.<loss>.slopes, major.<loss>.cap, major.<loss>.jumps, certified_radius,
lipschitz, cell_radius (each optional).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wdrobust.certify import Certificate, CertificateResult, build_certificate, certificate_class
from wdrobust.certify.base import default_radii, distinct_radii
from wdrobust.losses import CERTIFIABLE
from wdrobust.pipeline.config import EvalConfig
from wdrobust.pipeline.jobs.base import Job, UnitOutput, UnitTask, as_float64, optional
from wdrobust.pipeline.records import CertificateRecord
from wdrobust.pipeline.store import Unit
from wdrobust.primal.curves import Majorant


def certificate_radii(cfg: EvalConfig, d: int) -> np.ndarray:
    """Union of ``certify.default_radii`` over the configured eps for input dimension d, without radii
    that are equal as float32 shell knots (``certify.base.distinct_radii``); shape (M,)."""
    grids = [default_radii(cfg.norm, e, d) for e in cfg.eps_values]
    return distinct_radii(np.concatenate(grids))


@dataclass(frozen=True)
class CertificateJob(Job):
    """The registered certificate ``method`` in the threat norm ``norm``; ``eps`` is the largest configured
    radius (the one its ``options_for`` are taken at; recorded in the spec as p = inf)."""

    kind = "certificate"
    method: str
    norm: str
    eps: float

    @property
    def key(self) -> str:
        return f"certificate/{self.method}/{self.norm}"

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "method": self.method, "norm": self.norm, "eps": self.eps, "p": "inf"}

    @property
    def reads_visited(self) -> bool:
        return certificate_class(self.method).needs_points

    def build(self, cfg: EvalConfig, model: torch.nn.Module, device: torch.device, d: int) -> Certificate:
        """The certificate for inputs of dimension d with the certifiable configured losses and, unless
        its options say otherwise, the shell radii of ``certificate_radii`` and the other options of
        ``options_for`` at the largest eps; the configured orders p (``Certificate.orders``)."""
        return build_certificate(
            self.method,
            model,
            self.norm,
            {"radii": certificate_radii(cfg, d), **cfg.certificate_options.get(self.method, {})},
            around=(self.eps, d),
            losses=tuple(loss for loss in cfg.losses if loss in CERTIFIABLE),
            orders=cfg.p_values,
            device=device,
            batch_size=cfg.batch_size,
        )

    def run(self, task: UnitTask) -> UnitOutput:
        x, y = task.samples()
        cert = self.build(task.cfg, task.inputs.model, task.device, task.inputs.facts["input_dim"])
        visited = None if task.visited is None else task.visited.to(task.device)
        result = cert.run(x, y, visited=visited) if cert.needs_points else cert.run(x, y)
        info = {
            "sound": bool(result.sound),
            "note": result.note,
            "seconds_method": float(result.seconds),
            "forward_passes": 0,  # certificates do not count their passes
            "backward_passes": 0,
        }
        return self.to_arrays(result), info

    @staticmethod
    def to_arrays(result: CertificateResult) -> dict[str, np.ndarray]:
        """Arrays of a ``CertificateResult``: majorants (knots, slopes, cap, jumps) per loss and per-sample
        radii."""
        out = majorant_arrays(result.majorants)
        for name in ("certified_radius", "lipschitz", "cell_radius"):
            value = getattr(result, name)
            if value is not None:
                out[name] = as_float64(value)
        return out

    @staticmethod
    def from_arrays(
        spec: dict[str, Any], batches: list[dict[str, np.ndarray]], units: list[Unit]
    ) -> CertificateRecord:
        """One CertificateRecord from the job's per-batch arrays (in batch order) and its stored units
        (sound when every unit was; notes joined; seconds and passes summed)."""
        sound = all(u.info.get("sound", False) for u in units)
        parts = [majorants_of(b, sound, spec["method"]) for b in batches]
        majorants = {loss: Majorant.stack([part[loss] for part in parts]) for loss in sorted(parts[0])}
        notes = dict.fromkeys(u.info.get("note", "") for u in units if u.info.get("note"))
        return CertificateRecord(
            method=spec["method"],
            sound=sound,
            majorants=majorants,
            certified_radius=optional(batches, "certified_radius"),
            lipschitz=optional(batches, "lipschitz"),
            cell_radius=optional(batches, "cell_radius"),
            seconds=sum(u.seconds for u in units),
            forward_passes=sum(u.forward_passes for u in units),
            backward_passes=sum(u.backward_passes for u in units),
            note="; ".join(notes),
        )


def majorant_arrays(majorants: dict[str, Majorant]) -> dict[str, np.ndarray]:
    """The arrays of a unit's majorants: ``major.<loss>.<field>`` for the fields knots, slopes, cap, jumps."""
    return {
        f"major.{loss}.{field}": getattr(maj, field)
        for loss, maj in majorants.items()
        for field in ("knots", "slopes", "cap", "jumps")
    }


def majorants_of(arrays: dict[str, np.ndarray], sound: bool = True, method: str = "") -> dict[str, Majorant]:
    """The majorants of a unit's arrays (``majorant_arrays``), by loss, named "<method>:<loss>"."""
    losses = {k.split(".")[1] for k in arrays if k.startswith("major.")}
    return {
        loss: Majorant(
            arrays[f"major.{loss}.knots"],
            arrays[f"major.{loss}.slopes"],
            arrays[f"major.{loss}.cap"],
            sound=sound,
            name=f"{method}:{loss}",
            jumps=arrays.get(f"major.{loss}.jumps"),
        )
        for loss in losses
    }
