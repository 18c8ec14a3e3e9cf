"""Attack jobs: one per (attack, eps, p), since an attack depends on eps and, through its radius schedule,
on p. Each unit attacks one batch under the budget of the whole evaluated set (``Budget``: a sample may
move up to N^(1/p) eps, N the number of evaluated samples), so a batch reaches the radii of a single run.

Arrays: t (N, M) candidate distances, gain.<loss> (N, M), flip_distance (optional), points (optional:
candidate points (N, M, *S), float32, kept when the configuration asks: EvalConfig.stores_points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wdrobust.attacks import Attack, AttackResult, build_attack
from wdrobust.pipeline.config import EvalConfig
from wdrobust.pipeline.jobs.base import Job, UnitOutput, UnitTask, as_float64, optional
from wdrobust.pipeline.records import AttackRecord
from wdrobust.pipeline.store import Unit
from wdrobust.primal.curves import stack_points
from wdrobust.threat import ThreatModel


def p_text(p: float) -> str:
    """p as stored in keys and specs: "inf" or the shortest float text ("2", "1.5")."""
    return "inf" if math.isinf(p) else f"{p:g}"


@dataclass(frozen=True)
class AttackJob(Job):
    """The registered attack ``method`` under ``threat`` (norm, eps, p)."""

    kind = "attack"
    method: str
    threat: ThreatModel

    @property
    def key(self) -> str:
        return f"attack/{self.method}/{self.threat.norm}/eps={self.threat.eps!r}/p={p_text(self.threat.p)}"

    def spec(self) -> dict[str, Any]:
        t = self.threat
        return {"kind": self.kind, "method": self.method, "norm": t.norm, "eps": t.eps, "p": p_text(t.p)}

    def build(
        self, cfg: EvalConfig, model: torch.nn.Module, seed: int, device: torch.device, population: int
    ) -> Attack:
        """The attack with the configured losses and options, the unit's seed, and the budget of a
        population of ``population`` samples (the whole evaluated set)."""
        return build_attack(
            self.method,
            model,
            self.threat,
            cfg.attack_options.get(self.method),
            losses=cfg.losses,
            seed=seed,
            device=device,
            batch_size=cfg.batch_size,
            progress=None,
            keep_points=cfg.stores_points,
            population=population,
        )

    def run(self, task: UnitTask) -> UnitOutput:
        x, y = task.samples()
        population = task.inputs.x.shape[0]
        method = self.build(task.cfg, task.inputs.model, task.seed, task.device, population=population)
        result = method.run(x, y)
        info = {
            "seconds_method": float(result.seconds),
            "forward_passes": int(result.forward_passes),
            "backward_passes": int(result.backward_passes),
        }
        return self.to_arrays(result), info

    @staticmethod
    def to_arrays(result: AttackResult) -> dict[str, np.ndarray]:
        """Arrays of an ``AttackResult``: candidate distances t (N, M), gains per loss, flip distances,
        points (when kept)."""
        out = {"t": as_float64(result.t)}
        out.update({f"gain.{k}": as_float64(v) for k, v in result.gains.items()})
        if result.flip_distance is not None:
            out["flip_distance"] = as_float64(result.flip_distance)
        if result.points is not None:
            out["points"] = result.points.detach().cpu().float().numpy()
        return out

    @staticmethod
    def from_arrays(
        spec: dict[str, Any], batches: list[dict[str, np.ndarray]], units: list[Unit]
    ) -> AttackRecord:
        """One AttackRecord from the job's per-batch arrays (in batch order, columns padded to the widest
        batch) and its stored units (seconds and passes summed)."""
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
            flip_distance=optional(batches, "flip_distance"),
            seconds=sum(u.seconds for u in units),
            forward_passes=sum(u.forward_passes for u in units),
            backward_passes=sum(u.backward_passes for u in units),
        )
