"""The headline of a run: the few numbers a user reads first, printed at the end of ``wdrobust evaluate``.

Per threat model (eps, p): the distributional robust accuracy band [certified, attacked] (zero_one: the
certified accuracy is guaranteed, the attacked one is reached by an explicit distribution, the truth lies
between) and the worst-case expected cross-entropy band [attained, sound]; a dash where no method of that
kind ran. Numbers go through ``report.numbers``.
"""

from __future__ import annotations

from wdrobust.pipeline.document import Results, p_json
from wdrobust.report.numbers import MISSING, number


def headline(results: Results) -> list[str]:
    """Lines: the clean accuracy, then one aligned row per threat model with both bands."""
    lines = [
        f"clean accuracy {number(results.clean_accuracy)} on {results.n} samples ({results.norm} cost)",
        "per (eps, p): robust accuracy [certified, attacked] and worst-case expected CE [attained, sound]",
    ]
    header = f"{'eps':>8} {'p':>4}  {'certified':>9} {'attacked':>9}  {'CE attained':>11} {'CE sound':>10}"
    rows = [header]
    for tm in results.threat_models:
        acc = tm.losses.get("zero_one")
        band = None if acc is None else acc.accuracy
        ce = tm.losses.get("ce")
        cells = [
            MISSING if band is None else number(band.lower),
            MISSING if band is None else number(band.upper),
            MISSING if ce is None else number(ce.lower_bound),
            MISSING if ce is None or ce.best_sound_upper is None else number(ce.best_sound_upper.value),
        ]
        lead = f"{tm.eps_text:>8} {p_json(tm.p)!s:>4}"
        rows.append(f"{lead}  {cells[0]:>9} {cells[1]:>9}  {cells[2]:>11} {cells[3]:>10}")
    return lines + rows
