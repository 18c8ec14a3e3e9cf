"""The results of a run as the typed model of ``pipeline.document`` (schema ``wdrobust/results/v1``,
documented in docs/evaluate.md), built from its stored records.

In the spirit of RobustBench's model_info records: what was evaluated (model, data, n, seed, versions,
configuration and its hash), the clean figures, and per threat model the lower bounds of every attack,
the upper bounds of every certificate with its ``sound`` flag, their cost (seconds, passes), the gap and,
for zero_one, the distributional-accuracy band (``pipeline.aggregate``, one entry per threat model).
"""

from __future__ import annotations

from wdrobust.pipeline.aggregate import Records, aggregate
from wdrobust.pipeline.config import canonical, config_hash
from wdrobust.pipeline.document import (
    SCHEMA,
    AttackCost,
    CertificateCost,
    Cost,
    DataRecord,
    Methods,
    ModelRecord,
    Normalization,
    Results,
    RunFacts,
)


def _methods(records: Records) -> Methods:
    """Per attack: its jobs and their summed cost; per certificate: sound flag, seconds and note."""
    jobs: dict[str, list] = {}
    for rec in records.attacks.values():
        jobs.setdefault(rec.method, []).append(rec)
    attacks = {
        name: AttackCost(
            len(recs),
            Cost(
                sum((r.seconds for r in recs), 0.0),
                sum(r.forward_passes for r in recs),
                sum(r.backward_passes for r in recs),
            ),
        )
        for name, recs in jobs.items()
    }
    certificates = {
        rec.method: CertificateCost(rec.sound, rec.seconds, rec.note) for rec in records.certificates.values()
    }
    return Methods(attacks, certificates)


def model_record(records: Records) -> ModelRecord:
    """What was evaluated: name (the user's label, else the --model value), label, architecture (the
    registry name, or the class of a user's module), the data set it was evaluated on, the checkpoint
    path and the SHA-256 of its file (of its state_dict for a model given from Python), input shape, K
    and the input normalisation the model was wrapped in."""
    cfg, facts = records.config, records.facts
    norm = cfg.normalization
    shape = facts.get("input_shape")
    return ModelRecord(
        name=cfg.label or cfg.model,
        label=cfg.label,
        arch=facts.get("model_arch"),
        dataset=cfg.data,
        path=facts.get("model_path"),
        sha256=facts.get("model_sha256"),
        input_shape=None if shape is None else tuple(shape),
        classes=facts.get("classes"),
        normalization=None if norm is None else Normalization(tuple(norm[0]), tuple(norm[1])),
    )


def build_results(records: Records) -> Results:
    """The results of a run (the content of results.json, typed)."""
    cfg, facts = records.config, records.facts
    return Results(
        schema=SCHEMA,
        model=model_record(records),
        data=DataRecord(cfg.data, cfg.split, cfg.data_root, facts.get("n_available")),
        n=records.n,
        seed=cfg.seed,
        norm=cfg.norm,
        config=canonical(cfg),
        config_hash=config_hash(cfg),
        versions=records.versions,
        clean_accuracy=float(records.correct.mean()),
        clean_loss={k: float(v.mean()) for k, v in records.clean_loss.items()},
        threat_models=aggregate(records),
        methods=_methods(records),
        incomplete_jobs=tuple(records.incomplete),
        run=RunFacts(
            len({u.session for u in records.units}),
            len(records.units),
            float(sum(u.seconds for u in records.units)),
        ),
    )
