"""Aggregation of a run's stored records into bounds for every (norm, eps, p, loss), via the primal core.

For each threat model of the configuration and each loss:

- lower bounds: per attack (its own (eps, p) job) and ``best`` (the attained points of every attack job of
  the same norm pooled per sample: the union of attained points is still a set of attained points);
  ``primal.lower_bound`` returns the value of the best mixture and the budget it uses (audited <= eps);
- upper bounds: per certificate, ``primal.upper_bound`` of its majorants (one ``UpperBounder`` per
  certificate and loss serves every threat model), with the certificate's ``sound``
  flag; ``best_sound_upper`` is the smallest sound one;
- ``combined``: per sample, the pointwise minimum of the majorants of every sound certificate (and the
  largest of their certified radii for zero_one) is again sound; its bound is at most each one's;
- gap = best sound UB - best LB, ratio = UB / LB (when LB > 0);
- zero_one: ``primal.flip_knapsack`` of flip distances (attacks: an upper bound on distributional accuracy,
  i.e. a lower bound on the risk) and of certified radii (a lower bound on the accuracy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wdrobust import primal
from wdrobust.evaluate.config import EvalConfig, from_dict
from wdrobust.evaluate.jobs import AttackJob, CertificateJob, batches
from wdrobust.evaluate.records import AttackRecord, CertificateRecord
from wdrobust.evaluate.store import Store, Unit
from wdrobust.primal.curves import AttainedPoints
from wdrobust.threat import ThreatModel

#: Tolerance of the budget audit W_p(Q, P_N) <= eps (relative).
BUDGET_RTOL = 1e-9
#: Name of the combined sound certificate in the results.
COMBINED = "combined"


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
    _combined: dict[str, CertificateRecord | None] = field(default_factory=dict, init=False, repr=False)

    @property
    def n(self) -> int:
        """Number of evaluated samples."""
        return int(self.correct.shape[0])

    def combined(self, loss: str) -> CertificateRecord | None:
        """The combined sound certificate for ``loss`` (None with fewer than two sound certificates that
        bound it): the pointwise minimum of their majorants, or the largest of their certified radii."""
        if loss not in self._combined:
            self._combined[loss] = combine([r for r in self.certificates.values() if r.sound], loss)
        return self._combined[loss]


def combine(recs: list[CertificateRecord], loss: str) -> CertificateRecord | None:
    """Per sample, the minimum of the majorants (ce, margin: finite slopes only) or the maximum of the
    certified radii (zero_one) of the given sound certificates; None unless at least two apply."""
    if loss == "zero_one":
        use = [r for r in recs if r.certified_radius is not None]
    else:
        use = [r for r in recs if loss in r.majorants and np.isfinite(r.majorants[loss].slopes).all()]
    if len(use) < 2:
        return None
    note = ",".join(r.method for r in use)
    radius, majorants = None, {}
    if loss == "zero_one":
        radius = np.max(np.stack([r.certified_radius for r in use]), axis=0)
    else:
        major = use[0].majorants[loss]
        for r in use[1:]:
            major = major.minimum(r.majorants[loss])
        majorants[loss] = major
    cost = {k: sum(getattr(r, k) for r in use) for k in ("seconds", "forward_passes", "backward_passes")}
    return CertificateRecord(COMBINED, True, majorants, radius, None, None, note=note, **cost)


def load_records(store: Store) -> Records:
    """Join every complete job of the store; jobs with missing batches are listed in ``incomplete``."""
    raw = store.get_meta("config")
    if raw is None:
        raise ValueError(f"{store.path} holds no evaluation (no configuration recorded)")
    cfg = from_dict(raw)
    facts = store.get_meta("facts")
    n_batches = len(batches(facts["n"], cfg.batch_size))
    units = store.units()
    by_job: dict[str, list[Unit]] = {}
    for u in units:
        by_job.setdefault(u.job, []).append(u)
    specs = store.jobs()
    complete = {j for j, us in by_job.items() if len(us) == n_batches}
    if "clean" not in complete:
        raise ValueError(f"{store.path}: the clean pass has not finished; nothing to aggregate yet")
    order = range(n_batches)
    clean = store.job_arrays("clean", order)
    attacks: dict[str, AttackRecord] = {}
    certificates: dict[str, CertificateRecord] = {}
    for job, spec in specs.items():
        if job not in complete or spec["kind"] == "clean":
            continue
        arrays = store.job_arrays(job, order)
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


def flip_distances(rec: AttackRecord, correct: np.ndarray, clean_zero_one: np.ndarray) -> np.ndarray:
    """Per-sample distance of the closest misclassified candidate of an attack job, shape (N,).

    The minimum of the attack's own flip distances and of the candidates whose zero_one loss is 1
    (t_ik with g_ik + l_i >= 1); 0 for clean-misclassified samples, inf when none was found.
    """
    flips = np.full(correct.shape, math.inf) if rec.flip_distance is None else rec.flip_distance
    if "zero_one" in rec.gains:
        hit = rec.gains["zero_one"] + clean_zero_one[:, None] > 0.5
        flips = np.minimum(flips, np.where(hit, rec.t, math.inf).min(axis=1, initial=math.inf))
    return np.where(correct, flips, 0.0)


def best_flip_distances(records: Records) -> np.ndarray | None:
    """Per-sample minimum over every attack job of ``flip_distances``; None without attacks."""
    if not records.attacks:
        return None
    zero_one = records.clean_loss.get("zero_one", (~records.correct).astype(np.float64))
    return np.min([flip_distances(r, records.correct, zero_one) for r in records.attacks.values()], axis=0)


def _pooled(records: Records, loss: str) -> AttainedPoints | None:
    """The attained points of every attack job, side by side per sample (column concatenation)."""
    parts = [r for r in records.attacks.values() if loss in r.gains]
    if not parts:
        return None
    return AttainedPoints(
        np.concatenate([r.t for r in parts], 1), np.concatenate([r.gains[loss] for r in parts], 1)
    )


def transport_budget(points: AttainedPoints, alloc: Any, p: float) -> float:
    """W_p(Q, P_N) under the identity coupling of the lower bound's distribution Q, audited from the
    attained distances (not from the solver's own bookkeeping):
    p < inf: ((1/N) sum_i (1 - a_i) t_i,low^p + a_i t_i,high^p)^(1/p); p = inf: max_i over used points."""
    rows = np.arange(points.n)
    t_low, t_high = points.t[rows, alloc.low], points.t[rows, alloc.high]
    alpha = np.asarray(alloc.alpha, dtype=np.float64)
    if math.isinf(p):
        used = np.where(alpha > 0, np.maximum(t_low, t_high), t_low)
        return float(used.max(initial=0.0))
    cost = (1 - alpha) * t_low**p + alpha * t_high**p
    return float(cost.mean() ** (1 / p))


def _audit(budget: float, threat: ThreatModel) -> dict[str, Any]:
    return {"budget": budget, "budget_ok": bool(budget <= threat.eps * (1 + BUDGET_RTOL) + 1e-12)}


def _lower_entry(points: AttainedPoints, threat: ThreatModel, clean: np.ndarray) -> dict[str, Any]:
    """Risk lower bound R(0) + best mixture gain, with its audited transport budget."""
    lb = primal.lower_bound(points, threat, clean=clean)
    return {"value": float(lb.risk)} | _audit(transport_budget(points, lb.allocation, threat.p), threat)


def _zero_one_lower(flips: np.ndarray, correct: np.ndarray, threat: ThreatModel) -> dict[str, Any]:
    """Risk lower bound 1 - (distributional accuracy upper bound) from attack flip distances d_i, with
    the audited budget of the flips: (mean_i f_i d_i^p)^(1/p), f_i the flipped fraction (max d_i, p = inf)."""
    fk = primal.flip_knapsack(flips, correct, threat)
    moved = fk.flipped > 0
    if math.isinf(threat.p):
        budget = float(flips[moved].max(initial=0.0))
    else:
        cost = fk.flipped * np.where(moved, flips, 0.0) ** threat.p
        budget = float(cost.mean() ** (1 / threat.p))
    return {"value": fk.risk} | _audit(budget, threat)


def _cost(recs: list[AttackRecord | CertificateRecord]) -> dict[str, Any]:
    return {
        "seconds": float(sum(r.seconds for r in recs)),
        "forward_passes": int(sum(r.forward_passes for r in recs)),
        "backward_passes": int(sum(r.backward_passes for r in recs)),
    }


def _loss_entry(records: Records, threat: ThreatModel, loss: str, flips: np.ndarray | None) -> dict[str, Any]:
    clean = records.clean_loss[loss]
    own = {r.method: r for r in records.attacks.values() if (r.eps, r.p) == (threat.eps, threat.p)}
    lower: dict[str, Any] = {}
    for name, rec in own.items():
        if loss == "zero_one":
            entry = _zero_one_lower(flip_distances(rec, records.correct, clean), records.correct, threat)
        elif loss in rec.gains:
            entry = _lower_entry(AttainedPoints(rec.t, rec.gains[loss]), threat, clean)
        else:
            continue
        lower[name] = entry | _cost([rec])
    best = None
    if loss == "zero_one" and flips is not None:
        best = _zero_one_lower(flips, records.correct, threat)
    elif loss != "zero_one":
        pooled = _pooled(records, loss)
        best = None if pooled is None else _lower_entry(pooled, threat, clean)
    if best is not None:
        best |= _cost(list(records.attacks.values())) | {"pooled_jobs": len(records.attacks)}
    upper: dict[str, Any] = {}
    for rec in records.certificates.values():
        value = _upper_value(rec, threat, loss, clean, records.correct)
        if value is not None:
            upper[rec.method] = {"value": value, "sound": rec.sound} | _cost([rec])
    combined = records.combined(loss)
    if combined is not None:
        methods = combined.note.split(",")
        # the bound of the pointwise minimum is never above a part's (up to the dual's tolerance): keep the
        # smaller, so that combined is the best sound bound of its parts
        value = min(
            _upper_value(combined, threat, loss, clean, records.correct),
            *(upper[m]["value"] for m in methods if m in upper),
        )
        upper[COMBINED] = {"value": value, "sound": True, "methods": methods} | _cost([combined])
    sound = {k: v["value"] for k, v in upper.items() if v["sound"]}
    best_upper = min(sound.items(), key=lambda kv: (kv[1], kv[0] != COMBINED)) if sound else None
    out: dict[str, Any] = {
        "clean": float(clean.mean()),
        "lower": {"attacks": lower, "best": best},
        "upper": upper,
        "best_sound_upper": None if best_upper is None else {"method": best_upper[0], "value": best_upper[1]},
    }
    lb = None if best is None else best["value"]
    ub = None if best_upper is None else best_upper[1]
    out["gap"] = None if lb is None or ub is None else ub - lb
    out["ratio"] = None if lb is None or ub is None or lb <= 0 else ub / lb
    if loss == "zero_one":
        out["accuracy"] = {
            "clean": float(records.correct.mean()),
            "upper": None if lb is None else 1.0 - lb,
            "lower": None if ub is None else 1.0 - ub,
        }
    return out


def _upper_value(
    rec: CertificateRecord, threat: ThreatModel, loss: str, clean: np.ndarray, correct: np.ndarray
) -> float | None:
    """Upper bound of one certificate for one loss, or None when it does not bound that loss."""
    if loss == "zero_one":
        if rec.certified_radius is None:
            return None
        return primal.flip_knapsack(rec.certified_radius, correct, threat).risk
    if loss not in rec.majorants:
        return None
    return float(rec.bounder(loss)(threat, clean=clean).risk)


def aggregate(records: Records) -> list[dict[str, Any]]:
    """One entry per threat model of the configuration (eps-major, then p): bounds for every loss."""
    cfg = records.config
    flips = best_flip_distances(records)
    out = []
    for eps_text, eps in zip(cfg.eps, cfg.eps_values, strict=True):
        for p in cfg.p_values:
            threat = ThreatModel(cfg.norm, eps, p)
            losses = {
                loss: _loss_entry(records, threat, loss, flips)
                for loss in cfg.losses
                if loss in records.clean_loss and loss != "dlr"
            }
            out.append(
                {
                    "norm": cfg.norm,
                    "eps": eps,
                    "eps_text": eps_text,
                    "p": "inf" if math.isinf(p) else (int(p) if p.is_integer() else p),
                    "losses": losses,
                }
            )
    return out
