"""Aggregation of a run's stored records into bounds for every (norm, eps, p, loss), via the primal core: the
typed threat models of results.json (``pipeline.document.ThreatResult``).

Every loss goes the same way (``pipeline.bounds``): each record gives the growth of the loss (attacks:
attained points, zero_one flip distances; certificates: majorants, zero_one certified radii), computed
once, and for each threat model of the configuration

- lower bounds: per attack (its own (eps, p) job) and ``best`` (the growths of every attack job pooled per
  sample: the union of attained points is still a set of attained points, the closest flip of several
  attacks is the nearest); ``primal.lower_bound`` returns the value of the best mixture and the budget it
  uses (audited <= eps);
- upper bounds: per certificate, one ``primal.UpperBounder`` per certificate and loss serves every threat
  model, with the certificate's ``sound`` flag; ``best_sound_upper`` is the smallest sound one;
- ``combined``: per sample, the pointwise minimum of the majorants of every sound certificate (for
  certified radii: the step at the largest radius) is again sound; its bound is at most each one's;
- gap = best sound UB - best LB, ratio = UB / LB (when LB > 0); zero_one also gets the accuracy band
  [1 - UB, 1 - LB] of the distributional robust accuracy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from wdrobust import primal
from wdrobust._serde import from_json
from wdrobust.pipeline.bounds import lower_entry, upper_entry
from wdrobust.pipeline.config import EvalConfig
from wdrobust.pipeline.document import (
    AccuracyBand,
    BestUpper,
    Cost,
    LossBounds,
    ThreatResult,
    UpperEntry,
)
from wdrobust.pipeline.jobs import AttackJob, CertificateJob, attack_jobs
from wdrobust.pipeline.jobs.plan import PARTS_META, Layout
from wdrobust.pipeline.records import AttackRecord, CertificateRecord
from wdrobust.pipeline.store import Store, Unit
from wdrobust.threat import ThreatModel

#: Name of the combined sound certificate in the results.
COMBINED = "combined"
#: A growth an attack attained / a growth majorant a certificate gives.
Attained = primal.AttainedPoints | primal.FlipDistances
Majorants = primal.Majorant | primal.CertifiedRadii


@dataclass
class Records:
    """Everything stored for a run, joined over batches (only complete jobs)."""

    config: EvalConfig
    facts: dict[str, Any]
    versions: dict[str, str]
    y: np.ndarray
    correct: np.ndarray
    clean_loss: dict[str, np.ndarray]
    attacks: dict[str, AttackRecord]
    certificates: dict[str, CertificateRecord]
    incomplete: list[str]
    units: list[Unit]

    @property
    def n(self) -> int:
        """Number of evaluated samples."""
        return int(self.correct.shape[0])


def _combinable(growth: Majorants) -> bool:
    """``minimum`` applies: certified radii, or a majorant with finite slopes."""
    return not isinstance(growth, primal.Majorant) or bool(np.isfinite(growth.slopes).all())


def combine(recs: list[CertificateRecord], loss: str, correct: np.ndarray) -> CertificateRecord | None:
    """Per sample, the pointwise minimum (``minimum`` of the growth types: Majorant.minimum, or the step
    at the largest certified radius) of the growth majorants for ``loss`` of the given sound certificates
    (majorants with finite slopes only); correct: (N,) bool of the clean pass. None unless two apply."""
    use = [(r, g) for r in recs if (g := r.growth(loss, correct)) is not None and _combinable(g)]
    if len(use) < 2:
        return None
    growth = use[0][1]
    for _, g in use[1:]:
        growth = growth.minimum(g)
    cost = {k: sum(getattr(r, k) for r, _ in use) for k in ("seconds", "forward_passes", "backward_passes")}
    return CertificateRecord.of_growth(
        COMBINED, loss, growth, note=",".join(r.method for r, _ in use), **cost
    )


def load_records(store: Store) -> Records:
    """Join every complete job of the store (all the units of its ``Layout``, in sample order); jobs with
    missing units are listed in ``incomplete``."""
    raw = store.get_meta("config")
    if raw is None:
        raise ValueError(f"{store.path} holds no evaluation (no configuration recorded)")
    cfg = from_json(EvalConfig, raw, f"{store.path}: the stored configuration")
    facts = store.get_meta("facts")
    layout = Layout(facts["n"], cfg.batch_size, store.get_meta(PARTS_META) or {})
    units = store.units()
    by_job: dict[str, list[Unit]] = {}
    for u in units:
        by_job.setdefault(u.job, []).append(u)
    specs = store.jobs()
    complete = {j for j, us in by_job.items() if len(us) == len(layout.units(j))}
    if "clean" not in complete:
        raise ValueError(f"{store.path}: the clean pass has not finished; nothing to aggregate yet")
    clean = store.job_arrays("clean", layout.units("clean"))
    attacks: dict[str, AttackRecord] = {}
    certificates: dict[str, CertificateRecord] = {}
    for job, spec in specs.items():
        if job not in complete or spec["kind"] == "clean":
            continue
        arrays = store.job_arrays(job, layout.units(job))
        if spec["kind"] == "attack":
            attacks[job] = AttackJob.from_arrays(spec, arrays, by_job[job])
        else:
            certificates[job] = CertificateJob.from_arrays(spec, arrays, by_job[job])
    losses = sorted({k[5:] for k in clean[0] if k.startswith("loss.")})
    return Records(
        config=cfg,
        facts=facts,
        versions=store.get_meta("versions") or {},
        y=np.concatenate([b["y"] for b in clean]),
        correct=np.concatenate([b["correct"] for b in clean]).astype(bool),
        clean_loss={k: np.concatenate([b[f"loss.{k}"] for b in clean]) for k in losses},
        attacks=attacks,
        certificates=certificates,
        incomplete=sorted(set(specs) - complete),
        units=units,
    )


def _pooled(records: Records, loss: str) -> Attained | None:
    """The growths of every attack job pooled per sample (``union`` of the growth type); None when no
    attack recorded the loss."""
    parts = [g for r in records.attacks.values() if (g := r.growth(loss, records.correct)) is not None]
    return type(parts[0]).union(parts) if parts else None


def best_flip_distances(records: Records) -> np.ndarray | None:
    """Per-sample closest flip (``primal.closest_flips``) over every attack job; None without attacks."""
    pooled = _pooled(records, "zero_one")
    return None if pooled is None else pooled.distances


@dataclass
class _Growths:
    """What one loss's bounds need at every threat model, built once: the clean losses (N,), each attack
    job's record and growth by job key (growth None: not recorded), the pooled growth, each certificate's
    bounder (None: no bound) and the combined certificate with its bounder."""

    clean: np.ndarray
    attacks: dict[str, tuple[AttackRecord, Attained | None]]
    best: Attained | None
    certificates: list[tuple[CertificateRecord, primal.UpperBounder | None]]
    combined: tuple[CertificateRecord, primal.UpperBounder] | None

    @classmethod
    def of(cls, records: Records, loss: str) -> _Growths:
        def bounder(rec: CertificateRecord) -> primal.UpperBounder | None:
            growth = rec.growth(loss, records.correct)
            return None if growth is None else primal.UpperBounder(growth)

        sound = [r for r in records.certificates.values() if r.sound]
        combined = combine(sound, loss, records.correct)
        return cls(
            clean=records.clean_loss[loss],
            attacks={k: (r, r.growth(loss, records.correct)) for k, r in records.attacks.items()},
            best=_pooled(records, loss),
            certificates=[(r, bounder(r)) for r in records.certificates.values()],
            combined=None if combined is None else (combined, bounder(combined)),
        )


def _cost(recs: list[AttackRecord] | list[CertificateRecord]) -> Cost:
    """The summed cost of some records."""
    return Cost(
        float(sum(r.seconds for r in recs)),
        int(sum(r.forward_passes for r in recs)),
        int(sum(r.backward_passes for r in recs)),
    )


def _loss_entry(records: Records, threat: ThreatModel, loss: str, growths: _Growths) -> LossBounds:
    clean = growths.clean
    jobs = attack_jobs(records.config, threat)
    own = {j.method: growths.attacks[j.key] for j in jobs if j.key in growths.attacks}
    lower = {
        name: lower_entry(primal.lower_bound(g, threat, clean), _cost([rec]))
        for name, (rec, g) in own.items()
        if g is not None
    }
    best = None
    if growths.best is not None:
        pooled = list(records.attacks.values())
        best = lower_entry(primal.lower_bound(growths.best, threat, clean), _cost(pooled), len(pooled))
    upper: dict[str, UpperEntry] = {}
    for rec, bounder in growths.certificates:
        if bounder is not None:
            upper[rec.method] = upper_entry(bounder(threat, clean), _cost([rec]))
    if growths.combined is not None:
        combined, bounder = growths.combined
        methods = tuple(combined.note.split(","))
        entry = upper_entry(bounder(threat, clean), _cost([combined]), methods)
        # the bound of the pointwise minimum is never above a part's (up to the dual's tolerance): keep the
        # smaller, so that combined is the best sound bound of its parts
        value = min(entry.value, *(upper[m].value for m in methods if m in upper))
        upper[COMBINED] = dataclasses.replace(entry, value=value)
    sound = {k: v.value for k, v in upper.items() if v.sound}
    best_upper = min(sound.items(), key=lambda kv: (kv[1], kv[0] != COMBINED)) if sound else None
    lb = None if best is None else best.value
    ub = None if best_upper is None else best_upper[1]
    accuracy = None
    if loss == "zero_one":
        accuracy = AccuracyBand(
            float(records.correct.mean()), None if lb is None else 1.0 - lb, None if ub is None else 1.0 - ub
        )
    return LossBounds(
        clean=float(clean.mean()),
        lower=lower,
        best_lower=best,
        upper=upper,
        best_sound_upper=None if best_upper is None else BestUpper(*best_upper),
        gap=None if lb is None or ub is None else ub - lb,
        ratio=None if lb is None or ub is None or lb <= 0 else ub / lb,
        accuracy=accuracy,
    )


def aggregate(records: Records) -> tuple[ThreatResult, ...]:
    """One entry per threat model of the configuration (eps-major, then p): bounds for every loss."""
    cfg = records.config
    growths = {
        loss: _Growths.of(records, loss)
        for loss in cfg.losses
        if loss in records.clean_loss and loss != "dlr"
    }
    return tuple(
        ThreatResult(
            threat.norm,
            threat.eps,
            eps_text,
            threat.p,
            {loss: _loss_entry(records, threat, loss, g) for loss, g in growths.items()},
        )
        for eps_text, threat in cfg.grid
    )
