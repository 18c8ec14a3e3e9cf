"""A typed view of the results.json document (schema in docs/evaluate.md): what ``wdrobust.evaluate``
returns from Python.

``Results.from_dict(doc)`` reads a document (as ``build_results`` makes it, or as read back from
results.json); ``Results.to_dict()`` gives it back exactly as results.json holds it (non-finite numbers as
the strings "inf", "-inf", "nan"). ``Results.bounds(loss, eps, p)`` finds one threat model's band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wdrobust.report.io import json_ready
from wdrobust.threat import parse_number


def _number(value: Any) -> float | None:
    """A float from a document value (the strings "inf", "-inf", "nan" included); None stays None."""
    return None if value is None else float(value)


@dataclass(frozen=True)
class LossBounds:
    """The bounds of one loss at one threat model.

    clean: R(0); lower: per attack {value, budget, budget_ok, seconds, passes}; best_lower: the pooled
    attacks' entry (or None); upper: per certificate {value, sound, seconds, ...}; best_sound_upper:
    {method, value} (or None); gap = UB - LB and ratio = UB / LB (None when undefined); accuracy (zero_one
    only): {clean, lower (certified), upper (attacked)}.
    """

    clean: float
    lower: dict[str, dict[str, Any]]
    best_lower: dict[str, Any] | None
    upper: dict[str, dict[str, Any]]
    best_sound_upper: dict[str, Any] | None
    gap: float | None
    ratio: float | None
    accuracy: dict[str, float | None] | None = None

    @property
    def lower_bound(self) -> float | None:
        """The best attained lower bound of the risk (None without attacks)."""
        return None if self.best_lower is None else float(self.best_lower["value"])

    @property
    def upper_bound(self) -> float | None:
        """The best sound upper bound of the risk (None without sound certificates)."""
        return None if self.best_sound_upper is None else float(self.best_sound_upper["value"])

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> LossBounds:
        return cls(
            clean=float(entry["clean"]),
            lower=entry["lower"]["attacks"],
            best_lower=entry["lower"]["best"],
            upper=entry["upper"],
            best_sound_upper=entry["best_sound_upper"],
            gap=_number(entry["gap"]),
            ratio=_number(entry["ratio"]),
            accuracy=entry.get("accuracy"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "clean": self.clean,
            "lower": {"attacks": self.lower, "best": self.best_lower},
            "upper": self.upper,
            "best_sound_upper": self.best_sound_upper,
            "gap": self.gap,
            "ratio": self.ratio,
        }
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy
        return out


@dataclass(frozen=True)
class ThreatResult:
    """The bounds of every loss for one threat model W_p ball of radius eps under the ``norm`` cost."""

    norm: str
    eps: float
    eps_text: str
    p: float
    losses: dict[str, LossBounds]

    @classmethod
    def from_dict(cls, tm: dict[str, Any]) -> ThreatResult:
        losses = {k: LossBounds.from_dict(v) for k, v in tm["losses"].items()}
        return cls(tm["norm"], float(tm["eps"]), tm["eps_text"], parse_number(tm["p"], "p"), losses)

    def to_dict(self) -> dict[str, Any]:
        p: Any = "inf" if math.isinf(self.p) else (int(self.p) if self.p.is_integer() else self.p)
        return {
            "norm": self.norm,
            "eps": self.eps,
            "eps_text": self.eps_text,
            "p": p,
            "losses": {k: v.to_dict() for k, v in self.losses.items()},
        }


@dataclass(frozen=True)
class Results:
    """A run's results: what was evaluated (model, data, n, seed, norm, configuration and its hash,
    versions), the clean figures, the bounds per threat model, the cost per method, and the run folder
    (None when the evaluation ran without one)."""

    schema: str
    model: dict[str, Any]
    data: dict[str, Any]
    n: int
    seed: int
    norm: str
    config: dict[str, Any]
    config_hash: str
    versions: dict[str, str]
    clean_accuracy: float
    clean_loss: dict[str, float]
    threat_models: list[ThreatResult]
    methods: dict[str, Any]
    incomplete_jobs: list[str]
    run: dict[str, Any]
    run_dir: Path | None = field(default=None, compare=False)

    def bounds(self, loss: str, eps: float | str, p: float | str) -> LossBounds:
        """The bounds of ``loss`` at (eps, p); KeyError naming what exists when there is none."""
        e, q = parse_number(eps, "eps"), parse_number(p, "p")
        for tm in self.threat_models:
            if math.isclose(tm.eps, e, rel_tol=1e-12) and tm.p == q and loss in tm.losses:
                return tm.losses[loss]
        known = ", ".join(f"(eps={tm.eps_text}, p={tm.to_dict()['p']})" for tm in self.threat_models)
        raise KeyError(f"no {loss!r} bounds at eps={eps}, p={p}; the results hold {known}")

    @classmethod
    def from_dict(cls, doc: dict[str, Any], run_dir: Path | None = None) -> Results:
        return cls(
            schema=doc["schema"],
            model=doc["model"],
            data=doc["data"],
            n=int(doc["n"]),
            seed=int(doc["seed"]),
            norm=doc["norm"],
            config=doc["config"],
            config_hash=doc["config_hash"],
            versions=doc["versions"],
            clean_accuracy=float(doc["clean"]["accuracy"]),
            clean_loss={k: float(v) for k, v in doc["clean"]["loss"].items()},
            threat_models=[ThreatResult.from_dict(tm) for tm in doc["threat_models"]],
            methods=doc["methods"],
            incomplete_jobs=list(doc["incomplete_jobs"]),
            run=doc["run"],
            run_dir=run_dir,
        )

    def to_dict(self) -> dict[str, Any]:
        """The results.json document (strict JSON values)."""
        return json_ready(
            {
                "schema": self.schema,
                "model": self.model,
                "data": self.data,
                "n": self.n,
                "seed": self.seed,
                "norm": self.norm,
                "config": self.config,
                "config_hash": self.config_hash,
                "versions": self.versions,
                "clean": {"accuracy": self.clean_accuracy, "loss": self.clean_loss},
                "threat_models": [tm.to_dict() for tm in self.threat_models],
                "methods": self.methods,
                "incomplete_jobs": self.incomplete_jobs,
                "run": self.run,
            }
        )
