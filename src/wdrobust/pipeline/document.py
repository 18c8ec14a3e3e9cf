"""The typed results model: the whole results.json document (schema ``wdrobust/results/v1``, documented in
docs/evaluate.md, JSON Schema in docs/results.schema.json) as frozen dataclasses, what aggregation
(``pipeline.aggregate``) builds, every report writer reads and
``wdrobust.evaluate`` returns from Python.

The JSON form is generated from the fields (``wdrobust._serde``; the few keys spelled otherwise are declared
in field metadata): ``Results.from_dict(doc)`` reads a document (non-finite numbers may be the strings
"inf", "-inf", "nan"; ValueError naming the path of a malformed value), ``Results.to_dict()`` gives it back
exactly as results.json holds it (same keys in the same order, same numbers; non-finite ones as those
strings). Inside the model every Wasserstein order ``p`` is a float (math.inf for infinity); ``p_json``
spells it as the document does (an int when integral, else a float, or "inf"). ``Results.bounds(loss, eps,
p)`` finds one threat model's band.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from wdrobust._serde import form, from_json, to_json
from wdrobust.threat import parse_number

#: The schema id of results.json (bumped only when the document changes), as a type and as a string.
SchemaId = Literal["wdrobust/results/v1"]
SCHEMA: str = typing.get_args(SchemaId)[0]
#: The JSON form of a method's cost: its keys sit in the entry's own object.
INLINE = form(inline=True)
#: The JSON form of an entry that only some objects hold: no key when None.
OPTIONAL = form(omit_none=True)


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


@dataclass(frozen=True)
class LowerEntry:
    """An attained lower bound of the risk: value = R(0) + best mixture gain, the audited transport budget
    W_p(Q, P_N) of its distribution and whether it is <= eps, its cost; pooled_jobs (the pooled ``best``
    entry only): how many attack jobs were pooled."""

    value: float
    budget: float
    budget_ok: bool
    cost: Cost = field(metadata=INLINE)
    pooled_jobs: int | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class UpperEntry:
    """A certificate's upper bound of the risk, whether it is sound (else an estimate), its cost; methods
    (the ``combined`` entry only): the sound certificates whose pointwise minimum it is."""

    value: float
    sound: bool
    methods: tuple[str, ...] | None = field(default=None, kw_only=True, metadata=OPTIONAL)
    cost: Cost = field(metadata=INLINE)


@dataclass(frozen=True)
class BestUpper:
    """The smallest sound upper bound and the certificate that gives it."""

    method: str
    value: float


@dataclass(frozen=True)
class AccuracyBand:
    """zero_one: clean accuracy and the distributional robust accuracy band, upper = 1 - best attained
    risk (attacks), lower = 1 - best sound risk (certified); None where no method gives it."""

    clean: float
    upper: float | None
    lower: float | None


@dataclass(frozen=True)
class LossBounds:
    """The bounds of one loss at one threat model.

    clean: R(0); lower: per attack its attained bound; best_lower: the pooled attacks' bound (or None);
    upper: per certificate its bound; best_sound_upper (or None); gap = UB - LB and ratio = UB / LB (None
    when undefined); accuracy (zero_one only): the accuracy band.
    """

    clean: float
    lower: dict[str, LowerEntry] = field(metadata=form(key="lower.attacks"))
    best_lower: LowerEntry | None = field(metadata=form(key="lower.best"))
    upper: dict[str, UpperEntry]
    best_sound_upper: BestUpper | None
    gap: float | None
    ratio: float | None
    accuracy: AccuracyBand | None = field(default=None, metadata=OPTIONAL)

    @property
    def lower_bound(self) -> float | None:
        """The best attained lower bound of the risk (None without attacks)."""
        return None if self.best_lower is None else self.best_lower.value

    @property
    def upper_bound(self) -> float | None:
        """The best sound upper bound of the risk (None without sound certificates)."""
        return None if self.best_sound_upper is None else self.best_sound_upper.value


@dataclass(frozen=True)
class ThreatResult:
    """The bounds of every loss for one threat model: W_p ball of radius eps under the ``norm`` cost
    (eps_text: the radius as the configuration spells it; p a float, math.inf for infinity)."""

    norm: str
    eps: float
    eps_text: str
    p: float = field(metadata=form(encode=p_json))
    losses: dict[str, LossBounds]


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


@dataclass(frozen=True)
class AttackCost:
    """One attack's jobs (one per (eps, p)) and their summed cost."""

    jobs: int
    cost: Cost = field(metadata=INLINE)


@dataclass(frozen=True)
class CertificateCost:
    """One certificate's sound flag, seconds and note."""

    sound: bool
    seconds: float
    note: str


@dataclass(frozen=True)
class Methods:
    """The cost of every method of the run, per attack and per certificate."""

    attacks: dict[str, AttackCost]
    certificates: dict[str, CertificateCost]


@dataclass(frozen=True)
class RunFacts:
    """How the run was computed: sessions, stored units and the sum of their seconds."""

    sessions: int
    units: int
    seconds: float


@dataclass(frozen=True)
class Results:
    """A run's results: what was evaluated (model, data, n, seed, norm, the canonical configuration of
    ``pipeline.config.canonical`` (JSON values) and its hash, versions), the clean figures, the bounds per
    threat model, the cost per method, the jobs left out as incomplete, the run facts, and the run folder
    (None when the evaluation ran without one; not part of the document)."""

    schema: SchemaId
    model: ModelRecord
    data: DataRecord
    n: int
    seed: int
    norm: str
    config: dict[str, Any]
    config_hash: str
    versions: dict[str, str]
    clean_accuracy: float = field(metadata=form(key="clean.accuracy"))
    clean_loss: dict[str, float] = field(metadata=form(key="clean.loss"))
    threat_models: tuple[ThreatResult, ...]
    methods: Methods
    incomplete_jobs: tuple[str, ...]
    run: RunFacts
    run_dir: Path | None = field(default=None, compare=False, metadata=form(skip=True))

    #: The document read (``from_json``: ValueError naming the path of a malformed value, a document of
    #: another schema included) and written (``to_json``: strict JSON values, as results.json holds them).
    from_dict = classmethod(from_json)
    to_dict = to_json

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
