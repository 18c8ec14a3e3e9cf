"""The ``results.json`` record of a run (schema ``wdrobust/results/v1``, documented in docs/evaluate.md).

In the spirit of RobustBench's model_info records: what was evaluated (model, data, n, seed, versions,
configuration and its hash), the clean figures, and per threat model the lower bounds of every attack,
the upper bounds of every certificate with its ``sound`` flag, their cost (seconds, passes), the gap and,
for zero_one, the distributional-accuracy band.
"""

from __future__ import annotations

from typing import Any

from wdrobust.evaluate.aggregate import Records, aggregate
from wdrobust.evaluate.config import canonical, config_hash

SCHEMA = "wdrobust/results/v1"


def _methods(records: Records) -> dict[str, Any]:
    attacks: dict[str, dict[str, Any]] = {}
    for rec in records.attacks.values():
        entry = attacks.setdefault(
            rec.method, {"jobs": 0, "seconds": 0.0, "forward_passes": 0, "backward_passes": 0}
        )
        entry["jobs"] += 1
        entry["seconds"] += rec.seconds
        entry["forward_passes"] += rec.forward_passes
        entry["backward_passes"] += rec.backward_passes
    certificates = {
        rec.method: {"sound": rec.sound, "seconds": rec.seconds, "note": rec.note}
        for rec in records.certificates.values()
    }
    return {"attacks": attacks, "certificates": certificates}


def model_record(records: Records) -> dict[str, Any]:
    """What was evaluated: name (the user's label, else the --model value), label, architecture (the
    registry name, or the class of a user's module), the data set it was evaluated on, the checkpoint
    path and the SHA-256 of its file (of its state_dict for a model given from Python), input shape, K
    and the input normalisation the model was wrapped in."""
    cfg, facts = records.config, records.facts
    norm = cfg.normalization
    return {
        "name": cfg.label or cfg.model,
        "label": cfg.label,
        "arch": facts.get("model_arch"),
        "dataset": cfg.data,
        "path": facts.get("model_path"),
        "sha256": facts.get("model_sha256"),
        "input_shape": facts.get("input_shape"),
        "classes": facts.get("classes"),
        "normalization": None if norm is None else {"mean": norm[0], "std": norm[1]},
    }


def build_results(records: Records) -> dict[str, Any]:
    """The results.json document of a run (plain JSON types; non-finite floats are stringified on write)."""
    cfg, facts = records.config, records.facts
    sessions = {u.session for u in records.units}
    return {
        "schema": SCHEMA,
        "model": model_record(records),
        "data": {
            "name": cfg.data,
            "split": cfg.split,
            "root": cfg.data_root,
            "n_available": facts.get("n_available"),
        },
        "n": records.n,
        "seed": cfg.seed,
        "norm": cfg.norm,
        "config": canonical(cfg),
        "config_hash": config_hash(cfg),
        "versions": records.versions,
        "clean": {
            "accuracy": float(records.correct.mean()),
            "loss": {k: float(v.mean()) for k, v in records.clean_loss.items()},
        },
        "threat_models": aggregate(records),
        "methods": _methods(records),
        "incomplete_jobs": records.incomplete,
        "run": {
            "sessions": len(sessions),
            "units": len(records.units),
            "seconds": float(sum(u.seconds for u in records.units)),
        },
    }
