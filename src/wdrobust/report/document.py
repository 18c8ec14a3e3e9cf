"""The typed results model: the whole results.json document (schema ``wdrobust/results/v1``, documented in
docs/evaluate.md, JSON Schema in docs/results.schema.json) as frozen dataclasses, what every report writer
reads and what ``wdrobust.evaluate`` returns from Python.

``Results.from_dict(doc)`` reads a document (as aggregation emits it, or as read back from results.json:
non-finite numbers may be the strings "inf", "-inf", "nan"); ``Results.to_dict()`` gives it back exactly as
results.json holds it (same keys in the same order, same numbers; non-finite ones as those strings). Inside
the model every Wasserstein order ``p`` is a float (math.inf for infinity); ``p_json`` spells it as the
document does (an int when integral, else a float, or "inf"). ``Results.bounds(loss, eps, p)`` finds one
threat model's band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wdrobust.report.io import json_ready
from wdrobust.threat import parse_number

#: The schema id of results.json (bumped only when the document changes).
SCHEMA = "wdrobust/results/v1"


def _number(value: Any) -> float | None:
    """A float from a document value (the strings "inf", "-inf", "nan" included); None stays None."""
    return None if value is None else float(value)


def file_stem(name: str) -> str:
    """A name without its folder and file suffix when it names a file ("/runs/m.safetensors" -> "m"); a
    registry name (no folder, no suffix: "digits", "digits-default") as it is."""
    path = Path(name)
    return path.stem if path.suffix or len(path.parts) > 1 else name


def p_json(p: float) -> int | float | str:
    """The document's spelling of a Wasserstein order: "inf", an int when integral, else the float."""
    return "inf" if math.isinf(p) else (int(p) if p.is_integer() else p)


@dataclass(frozen=True)
class Cost:
    """What a method spent: wall-clock seconds and forward / backward passes (totals over samples)."""

    seconds: float
    forward_passes: int
    backward_passes: int

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> Cost:
        return cls(float(entry["seconds"]), int(entry["forward_passes"]), int(entry["backward_passes"]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "forward_passes": self.forward_passes,
            "backward_passes": self.backward_passes,
        }


@dataclass(frozen=True)
class LowerEntry:
    """An attained lower bound of the risk: value = R(0) + best mixture gain, the audited transport budget
    W_p(Q, P_N) of its distribution and whether it is <= eps, its cost; pooled_jobs (the pooled ``best``
    entry only): how many attack jobs were pooled."""

    value: float
    budget: float
    budget_ok: bool
    cost: Cost
    pooled_jobs: int | None = None

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> LowerEntry:
        pooled = entry.get("pooled_jobs")
        return cls(
            value=float(entry["value"]),
            budget=float(entry["budget"]),
            budget_ok=bool(entry["budget_ok"]),
            cost=Cost.from_dict(entry),
            pooled_jobs=None if pooled is None else int(pooled),
        )

    def to_dict(self) -> dict[str, Any]:
        out = {"value": self.value, "budget": self.budget, "budget_ok": self.budget_ok} | self.cost.to_dict()
        if self.pooled_jobs is not None:
            out["pooled_jobs"] = self.pooled_jobs
        return out


@dataclass(frozen=True)
class UpperEntry:
    """A certificate's upper bound of the risk, whether it is sound (else an estimate), its cost; methods
    (the ``combined`` entry only): the sound certificates whose pointwise minimum it is."""

    value: float
    sound: bool
    cost: Cost
    methods: tuple[str, ...] | None = None

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> UpperEntry:
        methods = entry.get("methods")
        return cls(
            value=float(entry["value"]),
            sound=bool(entry["sound"]),
            cost=Cost.from_dict(entry),
            methods=None if methods is None else tuple(methods),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "sound": self.sound}
        if self.methods is not None:
            out["methods"] = list(self.methods)
        return out | self.cost.to_dict()


@dataclass(frozen=True)
class BestUpper:
    """The smallest sound upper bound and the certificate that gives it."""

    method: str
    value: float

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> BestUpper:
        return cls(entry["method"], float(entry["value"]))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "value": self.value}


@dataclass(frozen=True)
class AccuracyBand:
    """zero_one: clean accuracy and the distributional robust accuracy band, upper = 1 - best attained
    risk (attacks), lower = 1 - best sound risk (certified); None where no method gives it."""

    clean: float
    upper: float | None
    lower: float | None

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> AccuracyBand:
        return cls(float(entry["clean"]), _number(entry["upper"]), _number(entry["lower"]))

    def to_dict(self) -> dict[str, Any]:
        return {"clean": self.clean, "upper": self.upper, "lower": self.lower}


@dataclass(frozen=True)
class LossBounds:
    """The bounds of one loss at one threat model.

    clean: R(0); lower: per attack its attained bound; best_lower: the pooled attacks' bound (or None);
    upper: per certificate its bound; best_sound_upper (or None); gap = UB - LB and ratio = UB / LB (None
    when undefined); accuracy (zero_one only): the accuracy band.
    """

    clean: float
    lower: dict[str, LowerEntry]
    best_lower: LowerEntry | None
    upper: dict[str, UpperEntry]
    best_sound_upper: BestUpper | None
    gap: float | None
    ratio: float | None
    accuracy: AccuracyBand | None = None

    @property
    def lower_bound(self) -> float | None:
        """The best attained lower bound of the risk (None without attacks)."""
        return None if self.best_lower is None else self.best_lower.value

    @property
    def upper_bound(self) -> float | None:
        """The best sound upper bound of the risk (None without sound certificates)."""
        return None if self.best_sound_upper is None else self.best_sound_upper.value

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> LossBounds:
        best, ub, acc = entry["lower"]["best"], entry["best_sound_upper"], entry.get("accuracy")
        return cls(
            clean=float(entry["clean"]),
            lower={k: LowerEntry.from_dict(v) for k, v in entry["lower"]["attacks"].items()},
            best_lower=None if best is None else LowerEntry.from_dict(best),
            upper={k: UpperEntry.from_dict(v) for k, v in entry["upper"].items()},
            best_sound_upper=None if ub is None else BestUpper.from_dict(ub),
            gap=_number(entry["gap"]),
            ratio=_number(entry["ratio"]),
            accuracy=None if acc is None else AccuracyBand.from_dict(acc),
        )

    def to_dict(self) -> dict[str, Any]:
        lower = {
            "attacks": {k: v.to_dict() for k, v in self.lower.items()},
            "best": None if self.best_lower is None else self.best_lower.to_dict(),
        }
        out: dict[str, Any] = {
            "clean": self.clean,
            "lower": lower,
            "upper": {k: v.to_dict() for k, v in self.upper.items()},
            "best_sound_upper": None if self.best_sound_upper is None else self.best_sound_upper.to_dict(),
            "gap": self.gap,
            "ratio": self.ratio,
        }
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy.to_dict()
        return out


@dataclass(frozen=True)
class ThreatResult:
    """The bounds of every loss for one threat model: W_p ball of radius eps under the ``norm`` cost
    (eps_text: the radius as the configuration spells it; p a float, math.inf for infinity)."""

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
        return {
            "norm": self.norm,
            "eps": self.eps,
            "eps_text": self.eps_text,
            "p": p_json(self.p),
            "losses": {k: v.to_dict() for k, v in self.losses.items()},
        }


@dataclass(frozen=True)
class Normalization:
    """The input normalisation (x - mean) / std the model was wrapped in, per channel."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class ModelRecord:
    """What was evaluated: name (the user's label, else the --model value), label, arch (registry name or
    the class of a user's module), dataset, checkpoint path (None from Python), sha256 (of the file, or of
    the state_dict from Python), input_shape, classes K, normalization."""

    name: str
    label: str | None
    arch: str | None
    dataset: str
    path: str | None
    sha256: str | None
    input_shape: tuple[int, ...] | None
    classes: int | None
    normalization: Normalization | None

    @property
    def short_name(self) -> str:
        """The name to show and to share: the user's label, else the checkpoint's stem or the registry
        name (``file_stem``), never a local path."""
        return self.label or file_stem(self.name)

    @classmethod
    def from_dict(cls, m: dict[str, Any]) -> ModelRecord:
        shape, norm = m["input_shape"], m["normalization"]
        return cls(
            name=m["name"],
            label=m["label"],
            arch=m["arch"],
            dataset=m["dataset"],
            path=m["path"],
            sha256=m["sha256"],
            input_shape=None if shape is None else tuple(int(s) for s in shape),
            classes=None if m["classes"] is None else int(m["classes"]),
            normalization=None if norm is None else Normalization(tuple(norm["mean"]), tuple(norm["std"])),
        )

    def to_dict(self) -> dict[str, Any]:
        norm = self.normalization
        return {
            "name": self.name,
            "label": self.label,
            "arch": self.arch,
            "dataset": self.dataset,
            "path": self.path,
            "sha256": self.sha256,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "classes": self.classes,
            "normalization": None if norm is None else {"mean": list(norm.mean), "std": list(norm.std)},
        }


@dataclass(frozen=True)
class DataRecord:
    """The evaluated data: set name, split, root folder (None: the default) and samples in the split."""

    name: str
    split: str
    root: str | None
    n_available: int | None

    @property
    def short_name(self) -> str:
        """The registry name of the data set, or its file's stem (``file_stem``), never a local path."""
        return file_stem(self.name)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataRecord:
        return cls(d["name"], d["split"], d["root"], d["n_available"])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "split": self.split, "root": self.root, "n_available": self.n_available}


@dataclass(frozen=True)
class AttackCost:
    """One attack's jobs (one per (eps, p)) and their summed cost."""

    jobs: int
    cost: Cost

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> AttackCost:
        return cls(int(entry["jobs"]), Cost.from_dict(entry))

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": self.jobs} | self.cost.to_dict()


@dataclass(frozen=True)
class CertificateCost:
    """One certificate's sound flag, seconds and note."""

    sound: bool
    seconds: float
    note: str

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> CertificateCost:
        return cls(bool(entry["sound"]), float(entry["seconds"]), entry["note"])

    def to_dict(self) -> dict[str, Any]:
        return {"sound": self.sound, "seconds": self.seconds, "note": self.note}


@dataclass(frozen=True)
class Methods:
    """The cost of every method of the run, per attack and per certificate."""

    attacks: dict[str, AttackCost]
    certificates: dict[str, CertificateCost]

    @classmethod
    def from_dict(cls, m: dict[str, Any]) -> Methods:
        return cls(
            {k: AttackCost.from_dict(v) for k, v in m["attacks"].items()},
            {k: CertificateCost.from_dict(v) for k, v in m["certificates"].items()},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "attacks": {k: v.to_dict() for k, v in self.attacks.items()},
            "certificates": {k: v.to_dict() for k, v in self.certificates.items()},
        }


@dataclass(frozen=True)
class RunFacts:
    """How the run was computed: sessions, stored units and the sum of their seconds."""

    sessions: int
    units: int
    seconds: float

    @classmethod
    def from_dict(cls, r: dict[str, Any]) -> RunFacts:
        return cls(int(r["sessions"]), int(r["units"]), float(r["seconds"]))

    def to_dict(self) -> dict[str, Any]:
        return {"sessions": self.sessions, "units": self.units, "seconds": self.seconds}


@dataclass(frozen=True)
class Results:
    """A run's results: what was evaluated (model, data, n, seed, norm, the canonical configuration of
    ``pipeline.config.canonical`` (JSON values) and its hash, versions), the clean figures, the bounds per
    threat model, the cost per method, the jobs left out as incomplete, the run facts, and the run folder
    (None when the evaluation ran without one; not part of the document)."""

    schema: str
    model: ModelRecord
    data: DataRecord
    n: int
    seed: int
    norm: str
    config: dict[str, Any]
    config_hash: str
    versions: dict[str, str]
    clean_accuracy: float
    clean_loss: dict[str, float]
    threat_models: tuple[ThreatResult, ...]
    methods: Methods
    incomplete_jobs: tuple[str, ...]
    run: RunFacts
    run_dir: Path | None = field(default=None, compare=False)

    @property
    def losses(self) -> list[str]:
        """Every loss with bounds, in order of first appearance over the threat models."""
        return list(dict.fromkeys(k for tm in self.threat_models for k in tm.losses))

    @property
    def ps(self) -> list[float]:
        """The distinct Wasserstein orders of the threat models, in order of appearance."""
        return list(dict.fromkeys(tm.p for tm in self.threat_models))

    def bounds(self, loss: str, eps: float | str, p: float | str) -> LossBounds:
        """The bounds of ``loss`` at (eps, p); KeyError naming what exists when there is none."""
        e, q = parse_number(eps, "eps"), parse_number(p, "p")
        for tm in self.threat_models:
            if math.isclose(tm.eps, e, rel_tol=1e-12) and tm.p == q and loss in tm.losses:
                return tm.losses[loss]
        known = ", ".join(f"(eps={tm.eps_text}, p={p_json(tm.p)})" for tm in self.threat_models)
        raise KeyError(f"no {loss!r} bounds at eps={eps}, p={p}; the results hold {known}")

    @classmethod
    def from_dict(cls, doc: dict[str, Any], run_dir: Path | None = None) -> Results:
        """The typed document; ValueError for a document of another schema."""
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} results document (schema {doc.get('schema')!r})")
        return cls(
            schema=doc["schema"],
            model=ModelRecord.from_dict(doc["model"]),
            data=DataRecord.from_dict(doc["data"]),
            n=int(doc["n"]),
            seed=int(doc["seed"]),
            norm=doc["norm"],
            config=doc["config"],
            config_hash=doc["config_hash"],
            versions=dict(doc["versions"]),
            clean_accuracy=float(doc["clean"]["accuracy"]),
            clean_loss={k: float(v) for k, v in doc["clean"]["loss"].items()},
            threat_models=tuple(ThreatResult.from_dict(tm) for tm in doc["threat_models"]),
            methods=Methods.from_dict(doc["methods"]),
            incomplete_jobs=tuple(doc["incomplete_jobs"]),
            run=RunFacts.from_dict(doc["run"]),
            run_dir=run_dir,
        )

    def to_dict(self) -> dict[str, Any]:
        """The results.json document (strict JSON values)."""
        return json_ready(
            {
                "schema": self.schema,
                "model": self.model.to_dict(),
                "data": self.data.to_dict(),
                "n": self.n,
                "seed": self.seed,
                "norm": self.norm,
                "config": self.config,
                "config_hash": self.config_hash,
                "versions": self.versions,
                "clean": {"accuracy": self.clean_accuracy, "loss": self.clean_loss},
                "threat_models": [tm.to_dict() for tm in self.threat_models],
                "methods": self.methods.to_dict(),
                "incomplete_jobs": list(self.incomplete_jobs),
                "run": self.run.to_dict(),
            }
        )
