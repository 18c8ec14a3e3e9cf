"""A RobustBench-style ``model_info`` record of a run (``wdrobust report RUN --format robustbench``).

RobustBench shares one JSON per (data set, threat model, model) with the fields link, name, authors,
additional_data, number_forward_passes, dataset, venue, architecture, eps, clean_acc, reported and
autoattack_acc (accuracies in percent, as strings with two decimals). The record fills what a run knows:
name (the run's label, else the checkpoint's stem or the registry name; never a local path), architecture,
dataset (the registry name or the data file's stem), eps, clean_acc, and autoattack_acc when the
``autoattack`` attack ran at p = inf (the point-wise robust accuracy that RobustBench reports, here on the
run's n samples); what a run cannot know (link, authors, venue, reported, additional_data) is null.
``threat_model`` ("Linf", "L2", "L1": RobustBench's spelling) is added, and the distributional figures go
under their own key ``wdrobust``: per (eps, p) the certified and attacked distributional accuracy and per
loss the risk band.
"""

from __future__ import annotations

import math
from typing import Any

from wdrobust.pipeline.document import Results, ThreatResult, p_json

MODEL_INFO_SCHEMA = "wdrobust/model_info/v1"
THREAT_NAMES = {"linf": "Linf", "l2": "L2", "l1": "L1"}
#: The attack whose point-wise accuracy fills RobustBench's autoattack_acc.
AUTOATTACK = "autoattack"


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.2f}"


def _autoattack_accuracy(tm: ThreatResult) -> float | None:
    """1 - (zero_one risk lower bound of the autoattack job) at a p = inf threat model, else None."""
    entry = tm.losses.get("zero_one")
    if not math.isinf(tm.p) or entry is None or AUTOATTACK not in entry.lower:
        return None
    return 1.0 - entry.lower[AUTOATTACK].value


def _distributional(tm: ThreatResult) -> dict[str, Any]:
    """The figures of one threat model: accuracy band (zero_one) and the risk band of every loss."""
    out: dict[str, Any] = {"eps": tm.eps_text, "p": p_json(tm.p)}
    zero_one = tm.losses.get("zero_one")
    if zero_one is not None and zero_one.accuracy is not None:
        out["accuracy_certified"] = zero_one.accuracy.lower
        out["accuracy_attacked"] = zero_one.accuracy.upper
    out["risk"] = {
        loss: {
            "clean": e.clean,
            "lower": e.lower_bound,
            "upper": e.upper_bound,
            "upper_method": None if e.best_sound_upper is None else e.best_sound_upper.method,
        }
        for loss, e in tm.losses.items()
    }
    return out


def model_info(results: Results) -> dict[str, Any]:
    """The model_info record of a run's results (see the module docstring).

    eps is the largest radius at which autoattack ran at p = inf, else the largest radius of the run.
    """
    tms = results.threat_models
    with_aa = [tm for tm in tms if _autoattack_accuracy(tm) is not None]
    chosen = max(with_aa or tms, key=lambda tm: tm.eps)
    aa = _autoattack_accuracy(chosen)
    model = results.model
    return {
        "link": None,
        "name": model.short_name,
        "authors": None,
        "additional_data": None,
        "number_forward_passes": 1,
        "dataset": results.data.short_name,
        "venue": None,
        "architecture": model.arch,
        "eps": chosen.eps_text,
        "clean_acc": _percent(results.clean_accuracy),
        "reported": None,
        "autoattack_acc": _percent(aa),
        "threat_model": THREAT_NAMES[results.norm],
        "wdrobust": {
            "schema": MODEL_INFO_SCHEMA,
            "n": results.n,
            "split": results.data.split,
            "model_sha256": model.sha256,
            "config_hash": results.config_hash,
            "autoattack_samples": results.n if aa is not None else None,
            "distributional": [_distributional(tm) for tm in tms],
        },
    }
